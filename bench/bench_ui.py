"""Server render time of every explorer page (``/ui``) with 60,000 retailers and 20 segments. Target: <= 1 s.

Run: ``.venv/bin/python bench/bench_ui.py [--retailers 60000 --segments 20 --versions 3 --repeats 5]``.

The state is written through the real stores, as the assigner leaves it: model versions in the registry, 20
segments with profiles (``segment_profile`` of random behaviour-v2 members), the SQL assignment history of
``--versions`` relabels (all retailers at the first, ``--move`` of them changing segment at each later one, one
lineage row per version) and the live Redis generation. The assigner app itself (``create_app``, lifespan
running against an embedded broker, Redis and SQLite) serves the pages; each is timed in-process (no network),
first request (cold: nothing memoised) and the median of ``--repeats`` more. The feature store is left empty, so
the retailer page draws no own seasonality (one Redis read less than with data).
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from fastapi.testclient import TestClient

from services.assigner.app import create_app
from services.assigner.link import KafkaLink
from services.assigner.profiles import segment_profile
from services.assigner.store import AssignmentStore
from shared.bus import ensure_topics, topic_specs
from shared.config import Settings
from shared.features import get_feature_set
from shared.segments import format_segment_id
from shared.stack import EmbeddedBroker, EmbeddedRedis, free_port
from shared.storage import AssignmentChange, Registry, SegmentInfo, upgrade_database
from shared.storage.models import utcnow

FEATURE_SET = "behaviour-v2"


def profiles(segments: list[str], rng: np.random.Generator) -> dict[str, dict]:
    columns = list(get_feature_set(FEATURE_SET).columns)
    out = {}
    for i, sid in enumerate(segments):
        members = pd.DataFrame(rng.gamma(2.0 + i % 5, 1.0, (200, len(columns))), columns=columns)
        out[sid] = {**segment_profile(members, FEATURE_SET, columns), "source": {"model_version": 1, "cluster": i}}
    return out


def relabel_once(registry: Registry, version: int, labels: np.ndarray, previous: np.ndarray | None,
                 segments: list[str], profile: dict[str, dict]) -> None:
    """What one relabel writes to SQL: the moved retailers' history, then segments and lineage (later in time)."""
    moved = np.arange(len(labels)) if previous is None else np.flatnonzero(labels != previous)
    reason = "new-retailer" if previous is None else "retrain"
    changes = [AssignmentChange(f"S{i:06d}", None if labels[i] < 0 else segments[labels[i]],
                                "noise" if labels[i] < 0 else "assigned", 0.0 if labels[i] < 0 else 0.9, reason)
               for i in moved]
    registry.assignments.record_assignments(changes, version, at=utcnow())
    sizes = np.bincount(labels[labels >= 0], minlength=len(segments))
    rows = [SegmentInfo(sid, f"segment {n}", 1, version, size=int(sizes[n]), profile=profile[sid])
            for n, sid in enumerate(segments)]
    lineage = {"model_version": version, "previous_version": None if version == 1 else version - 1,
               "continued": [] if version == 1 else [{"segment": s, "cluster": n, "jaccard": 0.95}
                                                     for n, s in enumerate(segments)],
               "born": segments if version == 1 else [], "retired": [], "split": [], "merged": []}
    registry.segments.upsert_segments(rows, next_number=len(segments) + 1, lineage=lineage)


def build_state(settings: Settings, retailers: int, n_segments: int, versions: int, move: float) -> list[str]:
    """Registry, history and live Redis generation; returns the shop ids."""
    rng = np.random.default_rng(0)
    registry = Registry(settings.effective_database_url)
    segments = [format_segment_id(n + 1) for n in range(n_segments)]
    profile = profiles(segments, rng)
    labels = np.where(rng.random(retailers) < 0.08, -1, rng.integers(0, n_segments, retailers))
    previous = None
    for version in range(1, versions + 1):
        latent = {"clusters": n_segments, "noise_ratio": 0.08, "largest_share": 0.06}
        number = registry.versions.register_candidate(feature_set=FEATURE_SET, params={}, training_rows=retailers,
                                                      seed=version, metrics={"latent": latent}, data_as_of="2025-12")
        registry.versions.mark_published(number, f"file:///nowhere/v{number}", "ab" * 32)
        if previous is not None:
            shift = rng.random(retailers) < move
            labels = np.where(shift, rng.integers(-1, n_segments, retailers), labels)
        relabel_once(registry, version, labels, previous, segments, profile)
        previous = labels.copy()
    shops = [f"S{i:06d}" for i in range(retailers)]
    states = pd.DataFrame({"segment": [None if c < 0 else segments[c] for c in labels],
                           "name": [None if c < 0 else f"segment {c}" for c in labels],
                           "status": ["noise" if c < 0 else "assigned" for c in labels], "strength": 0.9,
                           "model_version": versions, "since": utcnow().isoformat(), "reason": "retrain"},
                          index=pd.Index(shops, name="shop_id"))
    serving = {"version": versions, "feature_set": FEATURE_SET, "clusters": {str(n): s for n, s in enumerate(segments)},
               "names": {s: f"segment {n}" for n, s in enumerate(segments)}, "sha256": "ab" * 32,
               "artifact_uri": "file:///nowhere"}
    store = AssignmentStore(settings.redis_url)
    store.switch(store.stage(states, serving, {"bench": True}))
    registry.close()
    return shops


def time_pages(client: TestClient, paths: list[str], repeats: int) -> None:
    """Per page: the first request with nothing memoised (cold), then ``repeats`` more."""
    print(f"{'page':<44} {'status':>6} {'cold ms':>9} {'median ms':>10} {'max ms':>8}")
    for path in paths:
        client.app.state.ui_sources = None  # the explorer's memoised sizes and flows start empty
        timings, status = [], None
        for _ in range(repeats + 1):
            started = time.perf_counter()
            response = client.get(path, follow_redirects=False)
            timings.append(time.perf_counter() - started)
            status = response.status_code
        warm = timings[1:]
        print(f"{path:<44} {status:>6} {timings[0] * 1000:>9.0f} {statistics.median(warm) * 1000:>10.0f} "
              f"{max(warm) * 1000:>8.0f}")


def main(retailers: int = 60_000, segments: int = 20, versions: int = 3, move: float = 0.03, repeats: int = 5) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        root = Path(tmp)
        broker = EmbeddedBroker(free_port(), root / "broker")
        redis = EmbeddedRedis(free_port(), root / "redis")
        broker.start()
        redis.start()
        try:
            settings = Settings(data_dir=root, database_url=f"sqlite:///{root / 'db.sqlite'}",
                                artifact_uri=str(root / "artifacts"), kafka_bootstrap=broker.bootstrap,
                                redis_url=redis.url)
            ensure_topics(broker.bootstrap, topic_specs(settings))
            upgrade_database(settings.effective_database_url)
            started = time.perf_counter()
            shops = build_state(settings, retailers, segments, versions, move)
            print(f"state: {retailers:,} retailers, {segments} segments, {versions} versions "
                  f"({time.perf_counter() - started:.1f} s to write)")
            app = create_app(settings, link=KafkaLink(settings, group_id=f"bench-{uuid.uuid4().hex[:6]}"))
            with TestClient(app) as client:
                while not app.state.assigner.initialised.is_set():
                    time.sleep(0.1)
                paths = ["/ui", "/ui/segments/seg-0007", f"/ui/retailers/{shops[123]}", "/ui/lineage",
                         "/ui/lineage?version=2", "/ui/models", "/ui/changes", "/ui/changes?segment=seg-0003",
                         "/ui/changes?reason=features", f"/ui/search?q={shops[123][:-2]}", "/ui/retailers/NOBODY"]
                time_pages(client, paths, repeats)
        finally:
            redis.stop()
            broker.stop()


if __name__ == "__main__":
    typer.run(main)
