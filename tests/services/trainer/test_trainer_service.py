"""The trainer service with the real broker (tansu), Redis and SQL (SQLite, and PostgreSQL via ``sql_url``), fitting
in its real worker process: one request -> exactly one published version; concurrent requests -> one training;
a gated model is rejected and the current one stays; a crash mid-training leaves no half-registered version;
the same snapshot and seed give byte-identical artifacts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from services.trainer.executor import FitExecutor
from services.trainer.link import GROUP_ID
from services.trainer.publication import ABANDONED, recover, register_published, store_artifact
from services.trainer.snapshot import prepare_snapshot
from shared.artifacts import verify_manifest
from shared.bus.topics import MONTHS_CLOSED, TRAINING_REQUESTS
from shared.config import Settings
from shared.data.generator import generate_frames
from shared.features import build_features
from shared.model.params import ModelParams
from shared.storage import ArtifactStore, Registry, upgrade_database
from tests.services.trainer.test_trainer_support import (
    FEATURE_SET,
    TINY,
    RunningTrainer,
    committed_offsets,
    load_feature_store,
    published_events,
    send_month_closes,
    send_request,
    settings_env,
    store_frame,
    topic_end,
    trainer_settings,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("trainer")
PARAMS = ModelParams(**TINY)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return build_features(generate_frames(400, 3, seed=11).sales, FEATURE_SET)


@pytest.fixture(scope="module")
def executor() -> Iterator[FitExecutor]:
    """One warm worker process for the module (TensorFlow is imported once)."""
    pool = FitExecutor("json", "WARNING")
    asyncio.run(pool.start())
    yield pool
    pool.kill()


@pytest.fixture(scope="module")
def reference(features: pd.DataFrame, executor: FitExecutor, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An independent fit of the test snapshot, its rows shuffled first (canonical order must undo that)."""
    snapshot = prepare_snapshot(store_frame(features).sample(frac=1.0, random_state=3), FEATURE_SET)
    out = tmp_path_factory.mktemp("reference") / "bundle"
    meta = {"data_as_of": snapshot.data_as_of, "training_rows": snapshot.rows}
    result = asyncio.run(executor.fit(snapshot.features, FEATURE_SET, PARAMS, str(out), meta))
    return {**result, "snapshot": snapshot}


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file() and not p.name.startswith("_")}


def _publish_reference(database_url: str, artifact_uri: str, reference: dict) -> int:
    """Make the reference model the current version, as an earlier training would have."""
    with Registry.open(database_url) as registry:
        uri = store_artifact(ArtifactStore(artifact_uri), reference["directory"], FEATURE_SET, reference["sha256"])
        info = register_published(registry, reference["snapshot"], PARAMS, reference["metrics"], {}, uri,
                                  reference["sha256"])
    return info.version


def _reference_current(tmp_path: Path, bootstrap: str, redis_url: str, database_url: str, features: pd.DataFrame,
                       reference: dict, **overrides: Any) -> tuple[Settings, int]:
    """The feature store loaded, the trainer's settings, and the reference model already current; returns the
    settings and the current version."""
    load_feature_store(redis_url, features)
    settings = trainer_settings(tmp_path, bootstrap, redis_url, database_url, **overrides)
    return settings, _publish_reference(database_url, settings.effective_artifact_uri, reference)


def test_concurrent_requests_and_a_backfill_publish_exactly_one_reproducible_version(
    tmp_path: Path, fresh_kafka_bootstrap: str, redis_url: str, sql_url: str, features: pd.DataFrame,
    executor: FitExecutor, reference: dict,
) -> None:
    load_feature_store(redis_url, features)
    settings = trainer_settings(tmp_path, fresh_kafka_bootstrap, redis_url, sql_url)
    with RunningTrainer(settings, executor=executor) as trainer:
        barrier = threading.Barrier(3)

        def request(who: str) -> None:
            barrier.wait()
            send_request(fresh_kafka_bootstrap, reason="concurrent", requested_by=who)

        def backfill() -> None:  # two years of history closing month after month
            barrier.wait()
            send_month_closes(fresh_kafka_bootstrap, [f"{2024 + i // 12}-{i % 12 + 1:02d}" for i in range(24)])

        senders = [threading.Thread(target=request, args=(f"user{i}",)) for i in range(2)]
        senders.append(threading.Thread(target=backfill))
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(30)
        health_during_training: list[float] = []

        def finished() -> bool:
            status = trainer.status()
            if status["training"]:
                started = time.perf_counter()
                assert trainer.http.get("/healthz").status_code == 200
                health_during_training.append(time.perf_counter() - started)
            return status["last_outcome"] is not None

        wait_for(finished, 180, "the training to finish")
        assert trainer.status()["last_outcome"]["status"] == "published"
        events = published_events(fresh_kafka_bootstrap, wait_for_count=1)
        time.sleep(2.5)  # a second training would be due within the 2 s debounce
        assert trainer.metric("stableseg_trainer_trainings_total", outcome="published") == 1.0
        assert trainer.metric("stableseg_trainer_triggers_total", kind="request") == 2.0
        assert trainer.metric("stableseg_trainer_triggers_total", kind="month_closed") == 24.0
        assert trainer.metric("stableseg_trainer_training_rows") == len(store_frame(features))
        assert trainer.metric("stableseg_trainer_clusters", space="latent") >= 2
        assert trainer.metric("stableseg_trainer_last_success_timestamp_seconds") > time.time() - 300
        assert trainer.metric("stableseg_trainer_training_duration_seconds_count") == 1.0
    assert health_during_training and max(health_during_training) < 2.0  # the fit runs off the event loop

    with Registry(sql_url) as registry:
        versions = registry.versions.list_versions()
        current = registry.versions.current()
    assert [(v.version, v.status) for v in versions] == [(1, "published")] and current.version == 1
    info = versions[0]
    snapshot = reference["snapshot"]
    assert info.training_rows == snapshot.rows and info.data_as_of == snapshot.data_as_of == features["as_of"].max()
    assert info.metrics["latent"]["clusters"] >= 2 and info.metrics["raw"]["n"] == snapshot.rows
    assert info.tags["month_closes"] == 24 and info.tags["months"][-1] == "2025-12"
    assert info.tags["requests"] == 2 and {r["requested_by"] for r in info.tags["reasons"]} == {"user0", "user1"}
    assert info.tags["snapshot"]["feature_set"] == FEATURE_SET and info.tags["snapshot"]["rows"] == snapshot.rows
    assert [e["version"] for e in events] == [1]
    expected = {"version": 1, "feature_set": FEATURE_SET, "artifact_uri": info.artifact_uri, "sha256": info.sha256,
                "data_as_of": info.data_as_of}
    assert {k: v for k, v in events[0].items() if k != "metrics"} == expected
    assert events[0]["metrics"]["latent"]["clusters"] == info.metrics["latent"]["clusters"]
    local = ArtifactStore(settings.effective_artifact_uri).get_dir(info.artifact_uri, tmp_path / "got", info.sha256)
    assert verify_manifest(local, info.sha256).meta["data_as_of"] == info.data_as_of
    # Determinism: the same snapshot and seed, fitted independently from shuffled rows -> byte-identical files.
    assert info.sha256 == reference["sha256"]
    assert _files(local) == _files(Path(reference["directory"]))

    # The served requests are committed for the trainers' group: a restarted trainer will not train again for them.
    assert committed_offsets(fresh_kafka_bootstrap, GROUP_ID) == {TRAINING_REQUESTS: 2, MONTHS_CLOSED: 24}


def test_gated_model_is_rejected_with_reason_and_current_stays(
    tmp_path: Path, fresh_kafka_bootstrap: str, redis_url: str, features: pd.DataFrame, executor: FitExecutor,
    reference: dict,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'gate.db'}"
    settings, current = _reference_current(tmp_path, fresh_kafka_bootstrap, redis_url, database_url, features,
                                           reference, gate_min_clusters=50)
    with RunningTrainer(settings, executor=executor) as trainer:
        send_request(fresh_kafka_bootstrap, reason="gate")
        wait_for(lambda: trainer.status()["last_outcome"], 180, "the training to finish")
        assert trainer.status()["last_outcome"]["status"] == "rejected"
        assert trainer.metric("stableseg_trainer_trainings_total", outcome="rejected") == 1.0
        assert trainer.metric("stableseg_trainer_trainings_total", outcome="published") == 0.0
    with Registry(database_url) as registry:
        versions = registry.versions.list_versions()
        assert registry.versions.current().version == current
    assert [(v.version, v.status) for v in versions] == [(current, "published"), (current + 1, "rejected")]
    rejected = versions[-1]
    assert rejected.reason.startswith("quality gate failed: clusters ") and "< gate_min_clusters 50" in rejected.reason
    assert rejected.artifact_uri is None and rejected.metrics["latent"]["clusters"] < 50
    assert rejected.metrics["raw"] is not None  # both spaces are measured on every training
    store = ArtifactStore(settings.effective_artifact_uri)
    assert [store.uri_for(n) for n in store.list_names()] == [versions[0].artifact_uri]
    # Nothing announced the rejected model; the start-up reconciliation announced the current one (empty topic).
    assert [e["version"] for e in published_events(fresh_kafka_bootstrap, wait_for_count=1)] == [current]


def test_crash_mid_publication_leaves_no_half_registered_version(
    tmp_path: Path, fresh_kafka_bootstrap: str, redis_url: str, features: pd.DataFrame, executor: FitExecutor,
    reference: dict,
) -> None:
    """The service path on SQLite; the same steps on both backends without a fit in the recovery test below."""
    sql_url = f"sqlite:///{tmp_path / 'crash.db'}"
    settings, current = _reference_current(tmp_path, fresh_kafka_bootstrap, redis_url, sql_url, features, reference)
    seen: dict[str, Any] = {}

    def crash_after_registering(step: str) -> None:
        if step == "registered":  # the candidate row exists, publication has not happened
            with Registry(sql_url) as registry:
                seen["current"] = registry.versions.current().version
                seen["candidates"] = [v.version for v in registry.versions.list_versions(status="candidate")]
            raise RuntimeError("injected crash between registering and publishing")

    with RunningTrainer(settings, executor=executor, hook=crash_after_registering) as trainer:
        send_request(fresh_kafka_bootstrap, reason="crash")
        wait_for(lambda: trainer.status()["last_outcome"], 180, "the training to end")
        outcome = trainer.status()["last_outcome"]
        assert outcome["status"] == "failed" and "injected crash" in outcome["reason"]
        assert trainer.metric("stableseg_trainer_trainings_total", outcome="failed") == 1.0
    assert seen == {"current": current, "candidates": [current + 1]}
    with Registry(sql_url) as registry:
        versions = registry.versions.list_versions()
        assert registry.versions.current().version == current
    assert [(v.version, v.status, v.reason) for v in versions][1:] == [(current + 1, "rejected", ABANDONED)]
    assert [e["version"] for e in published_events(fresh_kafka_bootstrap, wait_for_count=1)] == [current]


def test_recovery_removes_what_a_killed_publication_left(tmp_path: Path, sql_url: str, reference: dict) -> None:
    """A process killed after the artifact upload (no row) or after the candidate row (not published)."""
    upgrade_database(sql_url)
    store = ArtifactStore(tmp_path / "artifacts")
    with Registry(sql_url) as registry:
        uri = store_artifact(store, reference["directory"], FEATURE_SET, reference["sha256"])
        assert store.exists(uri) and registry.versions.list_versions() == []  # killed here: an orphan artifact
        assert recover(registry, store) == {"rejected": [], "deleted": [Path(uri).name]}
        assert store.list_names() == []

        uri = store_artifact(store, reference["directory"], FEATURE_SET, reference["sha256"])
        with pytest.raises(RuntimeError, match="killed"):
            register_published(registry, reference["snapshot"], PARAMS, reference["metrics"], {}, uri,
                               reference["sha256"], before_publish=_raise)
        assert registry.versions.current() is None and registry.versions.list_versions()[0].status == "candidate"
        assert recover(registry, store) == {"rejected": [1], "deleted": []}
        assert registry.versions.get(1).status == "rejected" and registry.versions.get(1).reason == ABANDONED
        # Re-storing identical content reuses the committed artifact (content-addressed, immutable).
        assert store_artifact(store, reference["directory"], FEATURE_SET, reference["sha256"]) == uri


def _raise(version: int) -> None:
    raise RuntimeError(f"killed after registering version {version}")


def _serve(env: dict[str, str], log: Path) -> subprocess.Popen:
    """``stableseg serve trainer`` (the container entrypoint) in its own process group."""
    with log.open("ab") as out:
        return subprocess.Popen([STABLESEG, "serve", "trainer"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


STABLESEG = str(Path(sys.executable).with_name("stableseg"))


def test_killed_trainer_process_leaves_nothing_and_the_restart_serves_the_request(
    tmp_path: Path, fresh_kafka_bootstrap: str, redis_url: str, features: pd.DataFrame, reference: dict
) -> None:
    load_feature_store(redis_url, features)
    database_url = f"sqlite:///{tmp_path / 'proc.db'}"
    settings = trainer_settings(tmp_path, fresh_kafka_bootstrap, redis_url, database_url, trainer_lock_ttl_seconds=6)
    env = {**os.environ, **settings_env(settings)}
    http = httpx.Client(base_url=f"http://127.0.0.1:{settings.trainer_port}", timeout=5.0)
    log = tmp_path / "trainer.log"
    first = _serve(env, log)
    # A client waits for the new version (started now, it asks once the broker answers); the restarted service
    # must serve both its request and the one the killed service never finished.
    waiting = subprocess.Popen([STABLESEG, "retrain", "--wait", "--json", "--timeout", "300", "--reason", "after"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    second = None
    try:
        send_request(fresh_kafka_bootstrap, reason="kill-test")
        wait_for(lambda: b"training.snapshot" in log.read_bytes(), 120, "the training to start")
        os.killpg(first.pid, signal.SIGKILL)  # the service and its fitting worker, mid-training
        first.wait(10)
        with Registry(database_url) as registry:
            assert registry.versions.list_versions() == []
        assert ArtifactStore(settings.effective_artifact_uri).list_names() == []
        assert published_events(fresh_kafka_bootstrap) == []
        if not _eventually(lambda: topic_end(fresh_kafka_bootstrap, TRAINING_REQUESTS) == 2, 60):
            waiting.kill()
            out, err = waiting.communicate()
            raise AssertionError(f"the client's request never arrived: {out.decode()} {err.decode()}")
        second = _serve(env, log)
        out, err = waiting.communicate(timeout=300)
        assert waiting.returncode == 0, err.decode()
        event = json.loads(out)
        assert event["version"] == 1 and event["sha256"] == reference["sha256"]  # reproducible across processes
        time.sleep(2.0)
        status = http.get("/v1/status").json()
        assert status["last_outcome"]["status"] == "published" and not status["pending"] and not status["training"]
        with Registry(database_url) as registry:
            versions = [(v.version, v.status, v.tags["requests"]) for v in registry.versions.list_versions()]
        assert versions == [(1, "published", 2)]
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a graceful shutdown
        assert b"Application shutdown complete" in log.read_bytes()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        if waiting.poll() is None:
            waiting.kill()
        http.close()


def test_a_replica_waits_for_the_lock_and_skips_what_another_replica_served(
    tmp_path: Path, fresh_kafka_bootstrap: str, redis_url: str, sql_url: str, executor: FitExecutor, reference: dict
) -> None:
    settings = trainer_settings(tmp_path, fresh_kafka_bootstrap, redis_url, sql_url)
    upgrade_database(sql_url)
    with Registry(sql_url) as other, RunningTrainer(settings, executor=executor) as trainer:
        assert other.locks.acquire_training_lock("other-replica", ttl_seconds=120)  # another replica is training
        send_request(fresh_kafka_bootstrap, reason="replicas")
        wait_for(lambda: _is_due(trainer.status()["due_in_seconds"]), 60, "the request to fall due")
        time.sleep(1.5)
        status = trainer.status()
        assert status["pending"] and not status["training"] and status["last_outcome"] is None  # waiting
        # The other replica finishes: its version's snapshot is newer than our request, then it lets go.
        uri = store_artifact(ArtifactStore(settings.effective_artifact_uri), reference["directory"], FEATURE_SET,
                             reference["sha256"])
        served = replace(reference["snapshot"], taken_at=datetime.now(UTC))
        register_published(other, served, PARAMS, reference["metrics"], {}, uri, reference["sha256"])
        assert other.locks.release_training_lock("other-replica")
        wait_for(lambda: trainer.status()["last_outcome"], 30, "the trainer to take the lock")
        assert trainer.status()["last_outcome"]["status"] == "skipped"
        assert trainer.status()["last_outcome"]["version"] == 1
        assert trainer.metric("stableseg_trainer_trainings_total", outcome="skipped") == 1.0
        assert len(other.versions.list_versions()) == 1
    assert committed_offsets(fresh_kafka_bootstrap, GROUP_ID) == {TRAINING_REQUESTS: 1}


def _is_due(due_in: float | None) -> bool:
    return due_in is not None and due_in <= 0


def _eventually(predicate: Any, timeout: float) -> bool:
    try:
        wait_for(predicate, timeout, "condition")
    except AssertionError:
        return False
    return True
