"""Helpers for the trainer tests: test data in the feature store, the service in a thread, Kafka reads/writes.

(No tests here: named ``test_trainer_*`` to sit with them; imported by the trainer test modules.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import redis
import uvicorn
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from services.trainer.app import create_app
from shared.bus import (
    decode_event,
    encode_event,
    ensure_topics,
    make_sync_producer,
    publish,
    topic_specs,
    training_request,
)
from shared.bus.topics import MODELS_PUBLISHED, MONTHS_CLOSED
from shared.config import Settings
from shared.feature_store import Layout
from shared.feature_store.writer import StoreWriter
from shared.stack import free_port
from tests.helpers import wait_for as shared_wait_for

FEATURE_SET = "behaviour-v2"
TINY = {"epochs": 3, "min_cluster_size": 20}  # keeps a training at a few seconds of compute


def load_feature_store(redis_url: str, features: pd.DataFrame, feature_set: str = FEATURE_SET) -> None:
    """Write ``build_features`` output into the feature store (its own bootstrap write path, epoch 0)."""
    client = redis.Redis.from_url(redis_url)
    try:
        StoreWriter(client, Layout.from_settings()).load(0, {feature_set: features})
    finally:
        client.close()


def trainer_settings(tmp_path: Path, bootstrap: str, redis_url: str, database_url: str, **overrides: Any) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "data_dir": data_dir, "database_url": database_url, "artifact_uri": str(tmp_path / "artifacts"),
        "kafka_bootstrap": bootstrap, "redis_url": redis_url, "feature_set": FEATURE_SET, "log_format": "json",
        "trainer_port": free_port(), "retrain_debounce_seconds": 2.0, **TINY,
    }
    values.update(overrides)
    return Settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The same configuration as ``STABLESEG_*`` environment variables (for a subprocess)."""
    keys = ("data_dir", "database_url", "artifact_uri", "kafka_bootstrap", "redis_url", "feature_set", "log_format",
            "trainer_port", "retrain_debounce_seconds", "epochs", "min_cluster_size",
            "trainer_lock_ttl_seconds")
    return {f"STABLESEG_{k.upper()}": str(getattr(settings, k)) for k in keys}


class RunningTrainer:
    """The trainer app under uvicorn in a background thread (its own event loop); a context manager."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        self.port = settings.trainer_port
        config = uvicorn.Config(create_app(settings, **options), host="127.0.0.1", port=self.port, log_config=None,
                                access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="trainer-under-test", daemon=True)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10.0)

    def __enter__(self) -> RunningTrainer:
        self.thread.start()
        wait_for(lambda: self.server.started, 30, "uvicorn start")
        wait_for(lambda: self.http.get("/readyz").status_code == 200, 60, "trainer readiness")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.http.close()

    def status(self) -> dict[str, Any]:
        return self.http.get("/v1/status").json()

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the Prometheus text exposition (0.0 when absent)."""
        label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
        wanted = f"{name}{{{label_text}}}" if labels else name
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """:func:`helpers.wait_for` for a trainer process that may not answer HTTP yet."""
    return shared_wait_for(predicate, timeout, what, interval=interval, tolerate=(httpx.HTTPError, OSError))


def _topics(bootstrap: str) -> None:
    """Create the contract topics first, as every producer of ours does (tansu would auto-create 4 partitions)."""
    ensure_topics(bootstrap, topic_specs(Settings()))


def send_request(bootstrap: str, reason: str = "test", requested_by: str = "pytest") -> None:
    _topics(bootstrap)
    producer = make_sync_producer(bootstrap)
    try:
        publish(producer, training_request(reason, requested_by, source="tests")).get(timeout=15)
    finally:
        producer.close(timeout=5)


def send_month_closes(bootstrap: str, months: list[str], retailers: int = 400, gap_s: float = 0.05) -> None:
    """``months.closed`` events one after the other, like the features service during a backfill."""
    _topics(bootstrap)
    producer = make_sync_producer(bootstrap)
    try:
        for month in months:
            record = encode_event(MONTHS_CLOSED, {"month": month, "retailers": retailers}, key="", source="tests")
            publish(producer, record).get(timeout=15)
            time.sleep(gap_s)
    finally:
        producer.close(timeout=5)


def published_events(bootstrap: str, wait_for_count: int = 0, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Every ``models.published`` event from the beginning; waits up to ``timeout`` for ``wait_for_count``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp = TopicPartition(MODELS_PUBLISHED, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            for records in consumer.poll(timeout_ms=500).values():
                events.extend(decode_event(m.value, m.headers, m.key).data for m in records)
            end = consumer.end_offsets([tp])[tp]
            if (len(events) >= max(wait_for_count, end)) or time.monotonic() > deadline:
                return events
    finally:
        consumer.close()


def store_frame(features: pd.DataFrame) -> pd.DataFrame:
    """What ``FeatureStore.snapshot()`` returns for ``features``: eligible rows, ``as_of``, the features."""
    eligible = features.loc[features["eligible"]].drop(columns=["eligible"])
    eligible.index = eligible.index.astype(str).rename("shop_id")
    return eligible


def topic_end(bootstrap: str, topic: str) -> int:
    """Records ever written to partition 0 of ``topic`` (its end offset)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        tp = TopicPartition(topic, 0)
        return int(consumer.end_offsets([tp])[tp])
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str) -> dict[str, int]:
    """Committed offsets of a consumer group, by topic (partition 0 of each single-partition topic)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None})[group]
        return {tp.topic: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    finally:
        admin.close()
