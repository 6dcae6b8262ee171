"""The features service end to end: real tansu broker, real redis-server, the worker as a subprocess.

Every test gets its own empty broker (``fresh_kafka_bootstrap``); data: 40 synthetic shops x 3 years, loaded
through the ingest bulk loader (CloudEvents binary mode, keyed by shop). "Identical store" = every key and field of
the store (``FeatureStore.dump``) equal to what ``features rebuild`` reproduces from the same log.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
import redis
from kafka import KafkaConsumer

from services.features.rebuild import rebuild
from shared.bus import KafkaRecord, ensure_topics, make_sync_producer, publish, topic_specs
from shared.config import Settings
from shared.data.generator import generate_frames
from shared.feature_store import FeatureStore
from shared.features import FEATURE_SETS, EligibilityRule, build_features
from shared.stack import EmbeddedBroker, free_port
from tests.helpers import FeaturesProcess, assert_store_matches_batch, end_offsets, load_sales, wait_for_worker

pytestmark = [pytest.mark.xdist_group("features"), pytest.mark.slow]


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return generate_frames(40, 3, seed=5).sales


@pytest.fixture(params=["aiokafka", pytest.param("faust", marks=pytest.mark.xdist_group("faust"))])
def engine(request: pytest.FixtureRequest) -> str:
    """Every behaviour that belongs to the consumer engine is checked with both (``features_engine``); the faust
    runs form their own xdist group (``features_faust``), so ``-n 2 --dist loadgroup`` runs them beside the rest."""
    return request.param


@pytest.fixture
def env_settings(settings: Settings, fresh_kafka_bootstrap: str, engine: str) -> Settings:
    s = settings.model_copy(update={"kafka_bootstrap": fresh_kafka_bootstrap, "features_port": free_port(),
                                    "features_engine": engine})
    ensure_topics(fresh_kafka_bootstrap, topic_specs(s))
    return s


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., FeaturesProcess]]:
    started: list[FeaturesProcess] = []

    def start(settings: Settings, cli: bool = False) -> FeaturesProcess:
        worker = FeaturesProcess(settings, tmp_path / f"worker{len(started)}.log", cli=cli)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill(signal.SIGTERM)


def _caught_up(settings: Settings) -> bool:
    """Every record of sales.monthly applied and no shop waiting for a recompute."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        store = FeatureStore(client=client)
        stored = {int(k.rsplit(":", 1)[1]): v[0] for k, v in store.offsets().items()}
        ends = end_offsets(settings.kafka_bootstrap)
        if None in ends.values():
            return False
        done = all(stored.get(p, -1) == end - 1 for p, end in ends.items() if end)
        return done and store.dirty_count() == 0
    except redis.ConnectionError:
        return False
    finally:
        client.close()


def _assert_matches_batch(settings: Settings, sales: pd.DataFrame) -> None:
    assert_store_matches_batch(FeatureStore(settings.redis_url), sales, EligibilityRule.from_settings(settings))


def _assert_rebuild_identical(settings: Settings, worker: FeaturesProcess) -> None:
    """Stop the worker once it published every complete month, then rebuild: the months outbox is a queue of events
    not sent yet (a month waits for ``month_close_quiet_seconds`` of a settled store; a rebuild closes months without
    that wait), and whether a month was queued at all depends on where the batches ended (the first month seen only
    sets the latest month), so the stores are equal only once the worker drained it."""
    drained = FeatureStore(settings.redis_url).outbox_length
    wait_for_worker(lambda: drained() == 0, 60, "the months outbox to drain", worker)
    worker.kill(signal.SIGTERM)
    store = FeatureStore(settings.redis_url)
    streamed = store.dump()
    summary = rebuild(settings)
    assert summary.epoch == store.epoch()
    assert store.dump() == streamed


def _topic_values(bootstrap: str, topic: str) -> list[dict]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000, group_id=None)
    try:
        return [orjson.loads(m.value) for m in consumer]
    finally:
        consumer.close()


def test_the_service_streams_sales_into_the_store(env_settings, sales, workers, tmp_path) -> None:
    worker = workers(env_settings)
    wait_for_worker(lambda: worker.get("/healthz").status_code == 200, 60, "healthz", worker)
    load_sales(env_settings, sales, tmp_path)
    producer = make_sync_producer(env_settings.kafka_bootstrap)
    publish(producer, KafkaRecord("sales.monthly", b"S000001", b'{"shop_id": "S000001", "year": "x"}', []))
    producer.flush()
    producer.close()
    load_sales(env_settings, sales.iloc[:500], tmp_path, "again.csv")  # after the poison: the partition moves on
    wait_for_worker(lambda: _caught_up(env_settings), 120, "the worker to catch up", worker)
    _assert_matches_batch(env_settings, sales)
    rejected = _topic_values(env_settings.kafka_bootstrap, "sales.rejected")
    assert [r["source"] for r in rejected] == ["features"]
    assert {e["field"] for e in rejected[0]["errors"]} == {"product_id", "year", "month", "sales_qty"}
    updated = _topic_values(env_settings.kafka_bootstrap, "features.updated")
    assert {(u["shop_id"], u["feature_set"]) for u in updated} == {
        (s, fs) for s in sales.shop_id.unique() for fs in FEATURE_SETS
    }
    assert worker.get("/readyz").json()["checks"] == {"redis": True, "kafka": True, "consumer": True}
    metrics = worker.get("/metrics").text
    assert 'stableseg_features_records_total{outcome="rejected"} 1.0' in metrics
    assert "stableseg_features_consumer_lag 0.0" in metrics


def test_the_store_keeps_only_the_configured_feature_sets(settings, fresh_kafka_bootstrap, sales, workers,
                                                          tmp_path) -> None:
    """``feature_store_sets``: the worker computes, stores and announces only those sets (not an engine matter)."""
    s = settings.model_copy(update={"kafka_bootstrap": fresh_kafka_bootstrap, "features_port": free_port(),
                                    "feature_store_sets": ["behaviour-v4"]})
    ensure_topics(fresh_kafka_bootstrap, topic_specs(s))
    worker = workers(s)
    load_sales(s, sales, tmp_path)
    wait_for_worker(lambda: _caught_up(s), 120, "the worker to catch up", worker)
    store = FeatureStore(s.redis_url)
    rule = EligibilityRule.from_settings(s)
    expected = build_features(sales, "behaviour-v4", rule)
    got = store.snapshot("behaviour-v4", eligible_only=False)
    assert list(got.index) == sorted(expected.index.astype(str))
    assert store.snapshot("seed-v1", eligible_only=False).empty
    assert store.snapshot("behaviour-v2", eligible_only=False).empty
    updated = _topic_values(s.kafka_bootstrap, "features.updated")
    assert {u["feature_set"] for u in updated} == {"behaviour-v4"}


def _snapshots(settings: Settings) -> dict[str, pd.DataFrame]:
    store = FeatureStore(settings.redis_url)
    return {name: store.snapshot(name, eligible_only=False) for name in FEATURE_SETS}


def test_twice_shuffled_duplicated_and_corrected(env_settings, sales, workers, tmp_path) -> None:
    """Through the running service: the whole log again, shuffled, with a fraction duplicated gives the identical
    store; a correction (same key, new qty) replaces the value."""
    worker = workers(env_settings)
    load_sales(env_settings, sales, tmp_path)
    wait_for_worker(lambda: _caught_up(env_settings), 120, "the first load", worker)
    once = _snapshots(env_settings)
    again = pd.concat([sales, sales.iloc[::5]], ignore_index=True).sample(frac=1.0, random_state=7)
    load_sales(env_settings, again, tmp_path, "again.csv")
    wait_for_worker(lambda: _caught_up(env_settings), 120, "the shuffled, duplicated replay", worker)
    for name, frame in _snapshots(env_settings).items():
        pd.testing.assert_frame_equal(frame, once[name], check_exact=True)
    corrected = sales.iloc[:60].copy()
    corrected["sales_qty"] = corrected["sales_qty"] * 3 + 1
    load_sales(env_settings, corrected, tmp_path, "corrected.csv")
    wait_for_worker(lambda: _caught_up(env_settings), 120, "the corrections", worker)
    _assert_matches_batch(env_settings, pd.concat([sales, corrected], ignore_index=True))  # later rows win
    _assert_rebuild_identical(env_settings, worker)


def test_sigkill_mid_stream_then_restart_gives_the_identical_store(env_settings, sales, workers, tmp_path) -> None:
    env_settings = env_settings.model_copy(update={"features_batch_records": 300})  # many batches to die between
    total = load_sales(env_settings, sales, tmp_path)
    client = redis.Redis.from_url(env_settings.redis_url)

    def progress() -> int:
        offsets = FeatureStore(client=client).offsets()
        return sum(v[0] + 1 for v in offsets.values())

    first = workers(env_settings, cli=True)
    wait_for_worker(lambda: progress() > 0, 120, "the first batches", first)
    first.kill(signal.SIGKILL)
    assert progress() < total, "the worker finished before it was killed: use more data"
    second = workers(env_settings)  # the same run() through the lighter module entry
    wait_for_worker(lambda: _caught_up(env_settings), 180, "the restarted worker to catch up", second)
    _assert_matches_batch(env_settings, sales)
    _assert_rebuild_identical(env_settings, second)


def test_redis_down_then_killed_loses_nothing(env_settings, sales, workers, tmp_path, redis_server) -> None:
    """Redis stopped for a while (nothing acknowledged, readiness false, the worker waits), then SIGKILLed later
    (the AOF restores it; the worker resumes from the offsets it holds)."""
    worker = workers(env_settings)
    wait_for_worker(lambda: worker.get("/readyz").status_code == 200, 90, "readiness", worker)
    thirds = np.array_split(np.arange(len(sales)), 3)
    load_sales(env_settings, sales.iloc[thirds[0]], tmp_path, "first.csv")
    redis_server.stop()
    load_sales(env_settings, sales.iloc[thirds[1]], tmp_path, "second.csv")
    wait_for_worker(lambda: worker.get("/readyz").status_code == 503, 30, "readiness to drop", worker)
    time.sleep(3)
    assert worker.proc.poll() is None, "the worker must survive a Redis outage"
    redis_server.start()
    wait_for_worker(lambda: _caught_up(env_settings), 180, "the worker to catch up after Redis came back", worker)
    redis_server.kill()
    load_sales(env_settings, sales.iloc[thirds[2]], tmp_path, "third.csv")
    time.sleep(1)
    redis_server.start()
    wait_for_worker(lambda: _caught_up(env_settings), 180, "the worker after Redis was killed", worker)
    _assert_matches_batch(env_settings, sales)
    _assert_rebuild_identical(env_settings, worker)


def test_two_workers_split_the_partitions_and_build_the_same_store(env_settings, sales, workers, tmp_path) -> None:
    first, second = workers(env_settings), workers(env_settings.model_copy(update={"features_port": free_port()}))
    load_sales(env_settings, sales, tmp_path)
    wait_for_worker(lambda: _caught_up(env_settings), 240, "two workers to catch up", first)
    _assert_matches_batch(env_settings, sales)
    assigned = [w.logs().count("features.partitions_assigned") for w in (first, second)]
    assert all(assigned), f"both workers should have owned partitions at some point: {assigned}"
    for w in (first, second):
        w.kill(signal.SIGTERM)


def test_a_memory_only_broker_restart_neither_crashes_nor_loses_data(
    settings, engine, sales, workers, tmp_path
) -> None:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker", die_with_parent=True)
    broker.start()
    try:
        s = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap, "features_port": free_port(),
                                        "features_engine": engine})
        ensure_topics(broker.bootstrap, topic_specs(s))
        worker = workers(s)
        first, second = sales.iloc[: len(sales) // 2], sales.iloc[len(sales) // 2 :]
        load_sales(s, first, tmp_path, "first.csv")
        wait_for_worker(lambda: _caught_up(s), 120, "the first half", worker)
        shops_before = FeatureStore(s.redis_url).shop_count()
        broker.stop()
        broker.start()  # every topic, offset and group is gone
        # the worker notices, reports not-ready while topics are missing, re-creates them and restarts its consumer
        wait_for_worker(lambda: "features.topics_back" in worker.log.read_text(), 60, "the topics to be back", worker)
        wait_for_worker(lambda: worker.get("/readyz").status_code == 200, 60, "readiness", worker)
        assert worker.proc.poll() is None and FeatureStore(s.redis_url).shop_count() == shops_before
        load_sales(s, second, tmp_path, "second.csv")  # offsets start at 0 again, below the stored ones
        wait_for_worker(lambda: _caught_up(s), 180, "the second half on the new log", worker)
        _assert_matches_batch(s, sales)
        assert "features.log_reset" in worker.log.read_text() or "features.log_changed" in worker.log.read_text()
    finally:
        broker.stop()
