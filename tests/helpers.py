"""Helpers shared by the test modules (no tests here; the fixtures live in the ``conftest.py`` files).

- ``wait_for``: poll a condition with a timeout that names what it waited for.
- The assigner's world: synthetic retailers (``synthetic``), quick real model bundles (``quick_bundle``), a
  published version in a real registry + artifact store (``publish_bundle``), features in the real Redis feature
  store (``load_feature_store``), the output topics read back (``Bus``), all of it on the test's own broker
  (``make_world``), and an assigner app in a consumer group of its own (``assigner_app``).
- The features service and store: sales as the records a consumer hands the processor (``consumed_records``) or
  through the ingest bulk loader (``load_sales``), the store compared with the batch features
  (``assert_store_matches_batch``), the worker as a child process (``FeaturesProcess``, ``wait_for_worker``) and
  the high watermarks of ``sales.monthly`` (``end_offsets``).

``quick_bundle`` is a real :class:`ModelBundle` (RobustScaler, numpy encoder, HDBSCAN with prediction data) whose
encoder is a PCA projection instead of a trained autoencoder: seconds instead of minutes, and no TensorFlow. The
stability tests (``test_assigner_stability.py``) use it too; only ``bench/bench_stability.py`` fits the trainer's
``fit_bundle``.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import namedtuple
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import redis
from fastapi import FastAPI
from kafka import KafkaConsumer, TopicPartition
from pydantic import SecretStr
from sklearn.decomposition import PCA
from sklearn.preprocessing import RobustScaler

from services.assigner.app import create_app
from services.assigner.link import KafkaLink
from services.features.compute import feature_entries
from services.ingest.bulk import load_csv
from shared.artifacts import manifest_sha256
from shared.bus import decode_event, ensure_topics, make_sync_producer, publish, topic_specs
from shared.bus.topics import SEGMENTS_CHANGES, SEGMENTS_LINEAGE
from shared.clustering import DensityClusterer
from shared.config import Settings
from shared.data.generator import generate_frames
from shared.feature_store import FeatureStore, Layout
from shared.feature_store.writer import ShopMonthsBatch, StoreWriter
from shared.features import FEATURE_SETS, EligibilityRule, build_features, get_feature_set, monthly_panel
from shared.model.bundle import ModelBundle
from shared.model.numpy_encoder import BatchNormParams, NumpyEncoder
from shared.model.params import ModelParams
from shared.redis_client import redis_client
from shared.storage import ArtifactStore, ModelVersionInfo, Registry


def wait_for(
    check: Callable[[], Any],
    timeout: float = 60.0,
    what: str = "condition",
    *,
    interval: float = 0.1,
    tolerate: tuple[type[BaseException], ...] = (),
    on_timeout: Callable[[], str] | None = None,
) -> Any:
    """Poll ``check`` until it returns something truthy, and return that; an exception of a type in ``tolerate``
    (e.g. a service not listening yet) counts as "not yet". After ``timeout`` seconds: an AssertionError naming
    ``what``, followed by ``on_timeout()`` (e.g. a worker's logs) when given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except tolerate:
            value = None
        if value:
            return value
        time.sleep(interval)
    extra = f"\n{on_timeout()}" if on_timeout is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{extra}")


FEATURE_SET = "behaviour-v2"


@functools.lru_cache(maxsize=4)
def synthetic(retailers: int = 900, years: int = 3, seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sales, eligible retailers' behaviour-v2 features) from the project's generator."""
    data = generate_frames(retailers, years, seed)
    features = build_features(data.sales, FEATURE_SET)
    eligible = features[features["eligible"]].drop(columns=["eligible", "as_of"])
    return data.sales, eligible


def quick_bundle(features: pd.DataFrame, seed: int = 0, dim: int = 6, min_cluster_size: int = 25) -> ModelBundle:
    """A real bundle with a PCA encoder (see the module docstring); a non-zero ``seed`` picks the PCA's random
    state and a 95% subsample to fit on, so two seeds give two slightly different models of the same data."""
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(features), size=int(len(features) * 0.95), replace=False)) if seed else None
    fit_rows = features if keep is None else features.iloc[keep]
    values = fit_rows.to_numpy(dtype=float)
    scaler = RobustScaler().fit(values)
    scaled = scaler.transform(values)
    pca = PCA(dim, random_state=seed).fit(scaled)
    n = values.shape[1]
    projection = pca.components_.T
    encoder = NumpyEncoder(
        bn_input=BatchNormParams(np.ones(n), np.zeros(n), pca.mean_, np.ones(n), 0.0),
        hidden_kernel=np.hstack([projection, -projection]),  # relu(x P) - relu(-x P) = x P
        bn_hidden=BatchNormParams(np.ones(2 * dim), np.zeros(2 * dim), np.zeros(2 * dim), np.ones(2 * dim), 0.0),
        latent_kernel=np.vstack([np.eye(dim), -np.eye(dim)]),
        ln_gamma=np.full(dim, 1e4), ln_beta=np.zeros(dim), ln_epsilon=1e8,  # LayerNorm ~ centring only
    )
    clusterer = DensityClusterer(min_cluster_size=min_cluster_size).fit(encoder.transform(scaled))
    params = ModelParams(seed=seed, min_cluster_size=min_cluster_size, raw_baseline=False)
    return ModelBundle(FEATURE_SET, [str(c) for c in features.columns], scaler, encoder, clusterer, None, params)


def publish_bundle(registry: Registry, artifacts: ArtifactStore, bundle: ModelBundle, workdir: Path,
                   data_as_of: str = "2025-12") -> ModelVersionInfo:
    """Save, upload and register ``bundle`` as the next published (current) version, as the trainer does."""
    version = len(registry.versions.list_versions()) + 1
    directory = workdir / f"bundle-{version}"
    bundle.save(directory, meta={"note": f"test v{version}"})
    sha = manifest_sha256(directory)
    uri = artifacts.put_dir(directory, f"model-test-{version}-{sha[:12]}")
    number = registry.versions.register_candidate(feature_set=bundle.feature_set, params=bundle.params.model_dump(),
                                                  metrics={"latent": {"clusters": bundle.latent_clusterer.n_clusters_}},
                                                  training_rows=len(bundle.latent_clusterer.labels_),
                                                  data_as_of=data_as_of, seed=bundle.params.seed, artifact_uri=uri,
                                                  sha256=sha)
    return registry.versions.mark_published(number)


def load_feature_store(redis_url: str, sales: pd.DataFrame, revision: int = 1,
                       cluster: bool = False) -> list[dict[str, object]]:
    """Write every shop's features into the feature store with the features service's own write path; returns
    the ``features.updated`` payloads it would publish."""
    panel = monthly_panel(sales)
    n = panel.n_shops
    batch = ShopMonthsBatch(panel, np.full(n, revision, dtype=np.int64), np.full(n, 1_700_000_000_000, np.int64))
    entries, updates = feature_entries(batch, [get_feature_set(FEATURE_SET)], EligibilityRule())
    client = redis_client(redis_url, cluster=cluster)
    try:
        writer = StoreWriter(client, Layout.from_settings())
        epoch = FeatureStore(client=client, cluster=cluster, groups=writer.layout.groups).epoch()
        for start in range(0, len(entries), 500):
            writer.write(epoch, entries[start : start + 500])
    finally:
        client.close()
    return [u.as_event() for u in updates]


class Bus:
    """Producer and a from-the-beginning reader of the output topics on the test's own broker."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.producer = make_sync_producer(bootstrap)
        self.consumer = KafkaConsumer(SEGMENTS_CHANGES, SEGMENTS_LINEAGE, bootstrap_servers=bootstrap,
                                      group_id=f"test-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                                      consumer_timeout_ms=500, session_timeout_ms=10_000)
        self.changes: list[dict[str, Any]] = []
        self.lineage: list[dict[str, Any]] = []

    def send(self, record: Any) -> None:
        publish(self.producer, record).get(timeout=10)

    def poll(self) -> None:
        for message in self.consumer:
            event = decode_event(message.value, message.headers, message.key)
            (self.changes if message.topic == SEGMENTS_CHANGES else self.lineage).append(event.data)

    def lineage_of(self, version: int) -> dict[str, Any] | None:
        self.poll()
        return next((entry for entry in self.lineage if entry["model_version"] == version), None)

    def close(self) -> None:
        self.consumer.close()
        self.producer.close()


def make_world(tmp_path: Path, settings: Settings, bootstrap: str, admin_token: str | None = None
               ) -> Iterator[dict[str, Any]]:
    """Settings on the test's own broker, topics, a migrated registry, the artifact store and a ``Bus``."""
    update: dict[str, Any] = {"kafka_bootstrap": bootstrap}
    if admin_token:
        update["admin_token"] = SecretStr(admin_token)
    local = settings.model_copy(update=update)
    ensure_topics(bootstrap, topic_specs(local))
    registry = Registry.open(local.effective_database_url)
    bus = Bus(bootstrap)
    yield {"settings": local, "registry": registry, "artifacts": ArtifactStore(local.effective_artifact_uri),
           "bus": bus, "tmp": tmp_path}
    bus.close()
    registry.close()


def assigner_app(settings: Settings, group: str = "asg") -> FastAPI:
    """The assigner app with its own consumer group (``<group>-<random>``): it reads the topics from the start."""
    return create_app(settings, link=KafkaLink(settings, group_id=f"{group}-{uuid.uuid4().hex[:8]}"))


# --- the features service and store ------------------------------------------------------------------------------
VENV_BIN = Path(sys.executable).parent
ALL_FEATURE_SETS = [FEATURE_SETS[name] for name in sorted(FEATURE_SETS)]
Consumed = namedtuple("Consumed", "offset key value timestamp")


def consumed_records(frame: pd.DataFrame, start: int = 0, ts0: int = 1_700_000_000_000) -> list[Consumed]:
    """The rows of ``frame`` as consumed records (plain JSON values) with consecutive offsets from ``start``."""
    out = []
    for i, (shop, product, year, month, qty) in enumerate(frame.itertuples(index=False)):
        value = orjson.dumps({"shop_id": shop, "product_id": product, "year": int(year), "month": int(month),
                              "sales_qty": float(qty)})
        out.append(Consumed(start + i, shop.encode(), value, ts0 + start + i))
    return out


def assert_store_matches_batch(store: FeatureStore, sales: pd.DataFrame, rule: EligibilityRule | None = None
                               ) -> None:
    """Every feature set in ``store`` equals the batch features of ``sales`` (eligibility by ``rule``)."""
    rule = rule or EligibilityRule()
    for fs in ALL_FEATURE_SETS:
        expected = build_features(sales, fs.name, rule)
        expected.index = expected.index.astype(str)
        got = store.snapshot(fs.name, eligible_only=False)
        assert list(got.index) == sorted(expected.index)
        expected = expected.loc[got.index]
        assert (got["eligible"].to_numpy() == expected["eligible"].to_numpy()).all()
        assert (got["as_of"].to_numpy() == expected["as_of"].to_numpy()).all()
        np.testing.assert_allclose(got[list(fs.columns)], expected[list(fs.columns)], rtol=0, atol=1e-9)


def load_sales(settings: Settings, frame: pd.DataFrame, tmp: Path, name: str = "sales.csv") -> int:
    """``frame`` through the ingest bulk loader onto ``settings.kafka_bootstrap``; returns the records produced."""
    path = tmp / name
    frame.to_csv(path, index=False)
    return load_csv(path, settings.kafka_bootstrap).produced


class FeaturesProcess:
    """``stableseg serve features`` (or the light module entry) as a child process."""

    def __init__(self, settings: Settings, log: Path, cli: bool = False) -> None:
        env = {**os.environ, "STABLESEG_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
               "STABLESEG_REDIS_URL": settings.redis_url, "STABLESEG_FEATURES_PORT": str(settings.features_port),
               "STABLESEG_DATA_DIR": str(settings.data_dir), "STABLESEG_LOG_FORMAT": "json",
               "STABLESEG_FEATURES_BATCH_RECORDS": str(settings.features_batch_records),
               "STABLESEG_FEATURES_ENGINE": settings.features_engine,
               "STABLESEG_FEATURE_STORE_SETS": orjson.dumps(settings.feature_store_sets).decode()}
        cmd = [str(VENV_BIN / "stableseg"), "serve", "features"] if cli else [sys.executable, "-m", "services.features"]
        self.log = log
        self.proc = subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{settings.features_port}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)

    def logs(self) -> str:
        """Everything the worker logged so far."""
        return self.log.read_text(errors="replace")


def wait_for_worker(cond: Callable[[], bool], timeout: float, what: str, worker: FeaturesProcess | None = None
                    ) -> None:
    """``wait_for`` every 0.5 s, a service not answering yet counting as "not yet"; the worker's logs on timeout."""
    wait_for(cond, timeout, what, interval=0.5, tolerate=(httpx.HTTPError, redis.ConnectionError),
             on_timeout=(lambda: worker.logs()[-3000:]) if worker else None)


def end_offsets(bootstrap: str, topic: str = "sales.monthly") -> dict[int, int | None]:
    """High watermarks as fetch responses report them (tansu's ListOffsets(latest) answers too low)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        deadline = time.monotonic() + 10
        while any(consumer.highwater(tp) is None for tp in tps) and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200, max_records=1)
        return {tp.partition: consumer.highwater(tp) for tp in tps}  # None: not known yet
    finally:
        consumer.close()
