"""Helpers for the explorer tests (no tests here): a running assigner with data, on real infrastructure.

``running_world`` starts its own broker (tansu) and redis-server, fills the feature store with 900 generated
retailers, publishes two real model bundles (applied by the assigner: a first version and a reseeded, coarser
retrain with one cluster fewer) and a refused third, and serves the real assigner app with uvicorn on a free port.
It records the retailers' assignments after each applied version (read from Redis), so tests can tell what the
pages must show without asking the code under test.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import uvicorn
from pydantic import SecretStr

from services.assigner.store import AssignmentStore
from services.trainer.announce import published_record
from shared.artifacts import manifest_sha256
from shared.bus import encode_event, ensure_topics, topic_specs
from shared.bus.topics import FEATURES_UPDATED
from shared.config import Settings
from shared.metrics import clustering_report
from shared.stack import EmbeddedBroker, EmbeddedRedis, free_port
from shared.storage import ArtifactStore, Registry
from tests.helpers import Bus, assigner_app, load_feature_store, quick_bundle, synthetic, wait_for

TOKEN = "ui-admin-token"


@contextmanager
def serving(app: Any, port: int) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on 127.0.0.1:``port`` until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, name="ui-uvicorn", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: server.started, timeout=30, what="uvicorn to start")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def _metrics(bundle: Any) -> dict[str, Any]:
    """The registry metrics the trainer records: both spaces' clustering reports (the raw one from a second,
    coarser clustering so the two differ)."""
    labels = bundle.latent_clusterer.labels_
    coarse = pd.Series(labels).where(labels < 2, -1).to_numpy()
    return {"latent": clustering_report(labels), "raw": clustering_report(coarse)}


def _publish(world: dict[str, Any], seed: int, min_cluster_size: int) -> int:
    """Save, upload, register and announce a bundle as the trainer does; wait until the assigner applied it."""
    registry, bundle = world["registry"], quick_bundle(world["features"], seed=seed, min_cluster_size=min_cluster_size)
    version = len(registry.versions.list_versions()) + 1
    directory = world["tmp"] / f"bundle-{version}"
    bundle.save(directory)
    sha = manifest_sha256(directory)
    uri = world["artifacts"].put_dir(directory, f"model-ui-{version}-{sha[:12]}")
    number = registry.versions.register_candidate(feature_set=bundle.feature_set, params=bundle.params.model_dump(),
                                                  metrics=_metrics(bundle), training_rows=len(world["features"]),
                                                  data_as_of="2025-12", seed=seed, artifact_uri=uri, sha256=sha)
    world["bus"].send(published_record(registry.versions.mark_published(number)))
    wait_for(lambda: world["bus"].lineage_of(number), what=f"lineage of version {number}")
    world["states"][number] = AssignmentStore(world["settings"].redis_url).states()
    return number


def send_newcomer(world: dict[str, Any], template_shop: str) -> str:
    """A new retailer with the sales of ``template_shop``: features stored, ``features.updated`` sent."""
    sales = world["sales"]
    newcomer = f"NEW-{uuid.uuid4().hex[:6]}"
    events = load_feature_store(world["settings"].redis_url, sales[sales["shop_id"] == template_shop]
                                .assign(shop_id=newcomer), revision=7)
    for event in events:
        world["bus"].send(encode_event(FEATURES_UPDATED, event, key=event["shop_id"], source="test"))
    return newcomer


@contextmanager
def running_world(tmp: Path) -> Iterator[dict[str, Any]]:
    """The running assigner with two applied versions and a refused one; see the module docstring."""
    broker = EmbeddedBroker(free_port(), tmp / "broker", die_with_parent=True)
    redis_server = EmbeddedRedis(free_port(), tmp / "redis", die_with_parent=True)
    broker.start()
    redis_server.start()
    data = tmp / "data"
    data.mkdir()
    settings = Settings(data_dir=data, database_url=f"sqlite:///{data / 'stableseg.db'}",
                        artifact_uri=str(data / "artifacts"), kafka_bootstrap=broker.bootstrap,
                        redis_url=redis_server.url, admin_token=SecretStr(TOKEN))
    ensure_topics(broker.bootstrap, topic_specs(settings))
    registry, bus = Registry.open(settings.effective_database_url), Bus(broker.bootstrap)
    sales, features = synthetic()
    load_feature_store(settings.redis_url, sales)
    world: dict[str, Any] = {"settings": settings, "registry": registry, "bus": bus, "tmp": tmp, "sales": sales,
                             "features": features, "artifacts": ArtifactStore(settings.effective_artifact_uri),
                             "states": {}}
    app = assigner_app(settings, "ui")
    try:
        with serving(app, free_port()) as url:
            world["url"] = url
            wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="assigner readiness")
            _publish(world, 0, 25)
            _publish(world, 1, 40)  # a coarser retrain: one cluster fewer, so the lineage has more than continuations
            refused = registry.versions.register_candidate(feature_set="behaviour-v2", params={}, metrics={
                "latent": {"clusters": 1, "noise_ratio": 0.61, "largest_share": 0.39}}, training_rows=len(features),
                data_as_of="2025-12", seed=9)
            registry.versions.mark_rejected(refused, "noise_ratio 61.0% > 25.0%")
            time.sleep(0.2)
            yield world
    finally:
        bus.close()
        registry.close()
        redis_server.stop()
        broker.stop()
