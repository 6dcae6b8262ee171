"""Trainer logic without infrastructure: trigger coalescing and debounce, quality gates, snapshot checks,
artifact naming and the models.published payload."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from services.trainer.announce import metrics_summary, published_record
from services.trainer.publication import artifact_name
from services.trainer.snapshot import SnapshotError, prepare_snapshot
from services.trainer.triggers import Triggers
from shared.bus import decode_event
from shared.model.gates import Gates
from shared.storage import ModelVersionInfo


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _triggers(debounce: float = 10.0, settle: float = 1.0) -> tuple[Triggers, Clock]:
    clock = Clock()
    return Triggers(debounce, settle, clock=clock, wall=lambda: datetime(2025, 1, 1, tzinfo=UTC)), clock


def test_requests_together_make_one_batch_due_after_the_settle_time() -> None:
    triggers, clock = _triggers(settle=1.0)
    assert triggers.due_in() is None and triggers.take() is None
    triggers.seen("training.requests", 0, 7)
    triggers.request("manual", "a@x")
    clock.now += 0.5
    triggers.seen("training.requests", 0, 8)
    triggers.request("api", "b@y")
    assert triggers.due_in() == pytest.approx(0.5)  # settle counts from the FIRST request, later ones don't delay
    clock.now += 0.5
    batch = triggers.take()
    assert batch is not None and batch.request_count == 2 and batch.offsets == {("training.requests", 0): 8}
    assert [r["requested_by"] for r in batch.requests] == ["a@x", "b@y"]
    assert not triggers.pending and triggers.due_in() is None


def test_a_backfill_of_month_closes_is_debounced_into_one_training() -> None:
    triggers, clock = _triggers(debounce=10.0)
    for i in range(36):  # three years of history closing a month every 2 s
        triggers.month_closed(f"{2022 + i // 12}-{i % 12 + 1:02d}")
        clock.now += 2.0
        assert triggers.due_in() > 0  # never due while months keep closing
    clock.now += 8.0
    assert triggers.due_in() == pytest.approx(0.0)
    batch = triggers.take()
    assert batch.month_close_count == 36 and batch.tags()["months"][-1] == "2024-12"


def test_triggers_during_a_training_coalesce_into_one_next_run() -> None:
    triggers, clock = _triggers(debounce=10.0, settle=1.0)
    triggers.request("first", None)
    clock.now += 1.0
    first = triggers.take()  # the training starts
    for offset in range(5):
        triggers.seen("training.requests", 0, offset)
        triggers.request("while training", None)
    triggers.month_closed("2025-01")
    second = triggers.take()
    assert first is not None and second is not None and second.request_count == 5
    assert second.offsets == {("training.requests", 0): 4} and first.offsets == {}
    assert second.due == pytest.approx(clock.now + 10.0)  # with both kinds pending, the later due time wins
    assert triggers.take() is None


def test_negative_debounce_is_refused() -> None:
    with pytest.raises(ValueError, match="debounce"):
        Triggers(-1.0)


def test_gates_name_every_failed_limit() -> None:
    gates = Gates(min_clusters=2, max_noise_ratio=0.5, max_largest_share=0.9)
    assert gates.verdict({"clusters": 4, "noise_ratio": 0.2, "largest_share": 0.5}) is None
    reason = gates.verdict({"clusters": 1, "noise_ratio": 0.7, "largest_share": 0.95})
    assert reason is not None
    assert "clusters 1 < gate_min_clusters 2" in reason
    assert "noise_ratio 0.7000 > gate_max_noise_ratio 0.5" in reason
    assert "largest_share 0.9500 > gate_max_largest_share 0.9" in reason
    with pytest.raises(ValueError, match="gate_max_noise_ratio"):
        Gates(max_noise_ratio=1.5)


def _store_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(5, 3)), columns=["a", "b", "c"], index=["s5", "s1", "s3", "s2", "s4"])
    frame.insert(0, "as_of", ["2025-03", "2025-04", "2024-12", "2025-04", "2025-01"])
    return frame


def test_snapshot_is_canonically_ordered_and_records_its_as_of_month() -> None:
    snapshot = prepare_snapshot(_store_frame(), "fs")
    assert list(snapshot.features.index) == ["s1", "s2", "s3", "s4", "s5"]
    assert list(snapshot.features.columns) == ["a", "b", "c"]
    assert snapshot.data_as_of == "2025-04" and snapshot.rows == 5


def test_snapshot_problems_are_named() -> None:
    with pytest.raises(SnapshotError, match="no eligible retailers"):
        prepare_snapshot(_store_frame().iloc[:0], "fs")
    with pytest.raises(SnapshotError, match="'as_of'"):
        prepare_snapshot(_store_frame().drop(columns="as_of"), "fs")
    bad = _store_frame()
    bad.loc["s3", "as_of"] = "2025-13"
    with pytest.raises(SnapshotError, match="as_of: 1 row"):
        prepare_snapshot(bad, "fs")


def test_artifact_names_are_content_addressed_and_valid() -> None:
    sha = "0123456789abcdef" * 4
    assert artifact_name("behaviour-v2", sha) == "model-behaviour-v2-0123456789abcdef"
    assert artifact_name("odd name/x", sha) == "model-odd_name_x-0123456789abcdef"


def _info(status: str = "published") -> ModelVersionInfo:
    report = {"n": 10, "clusters": 2, "noise": 1, "noise_ratio": 0.1, "largest_share": 0.5, "sizes": {"0": 5, "1": 4},
              "gini": 0.05, "silhouette": 0.3, "dbcv": None, "ari": None, "ami": None}
    metrics = {"n": 10, "latent": report, "raw": report, "seconds": {"total": 1.0},
               "autoencoder": {"epochs_run": 3, "final_loss": 0.5, "history": {"loss": [1.0, 0.7, 0.5]}}}
    return ModelVersionInfo(
        version=3, created_at=datetime(2025, 1, 1, tzinfo=UTC), feature_set="behaviour-v2", params={},
        metrics=metrics, training_rows=10, data_as_of="2024-12", artifact_uri="/a/model-x", sha256="ab" * 32,
        status=status, reason=None, tags={}, seed=42,
    )


def test_published_event_carries_the_contract_fields() -> None:
    record = published_record(_info())
    event = decode_event(record.value, record.headers, record.key)
    assert record.topic == "models.published" and event.key == "3" and event.type == "io.stableseg.models.published.v1"
    assert set(event.data) == {"version", "feature_set", "artifact_uri", "sha256", "metrics", "data_as_of"}
    assert event.data["metrics"]["latent"]["clusters"] == 2 and "history" not in event.data["metrics"]["autoencoder"]
    assert metrics_summary(_info().metrics)["raw"]["noise_ratio"] == 0.1
    with pytest.raises(ValueError, match="only a published version"):
        published_record(_info("rejected"))
