"""Crash safety of the assigner on real Redis, SQL and broker: the Redis generation switch, a relabel that stopped
after staging (resumed exactly as decided), Redis losing the assignments (rebuilt from SQL), and a model published
while the assigner was down (caught up at start)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from services.assigner.book import Book
from services.assigner.ledger import next_states, serving_record
from services.assigner.pending import PendingRelabel
from services.assigner.relabel import relabel
from services.assigner.store import AssignmentStore
from shared.config import Settings
from shared.storage.models import utcnow
from tests.helpers import assigner_app, load_feature_store, publish_bundle, quick_bundle, synthetic, wait_for

pytestmark = pytest.mark.xdist_group("assigner")


def start(settings: Settings) -> tuple[Any, TestClient]:
    app = assigner_app(settings)
    return app, TestClient(app)


def states_frame(shops: list[str], segment: str | None, version: int) -> pd.DataFrame:
    index = pd.Index(shops, name="shop_id", dtype=object)
    return pd.DataFrame({"segment": segment, "name": "n", "status": "assigned" if segment else "noise",
                         "strength": 0.5, "model_version": version, "since": "2025-01-01T00:00:00+00:00",
                         "reason": "retrain"}, index=index)


def test_generation_switch_is_atomic_for_readers(redis_url: str) -> None:
    store = AssignmentStore(redis_url)
    first = store.stage(states_frame(["a", "b"], "seg-0001", 1), {"version": 1}, {"version": 1})
    assert store.get("a") is None and store.pending() == (first, {"version": 1})  # staged, not live
    store.switch(first)
    assert store.get("a")["segment"] == "seg-0001" and store.pending() is None
    second = store.stage(states_frame(["a"], "seg-0002", 2), {"version": 2}, {"version": 2})
    assert store.get("a")["segment"] == "seg-0001" and store.get("b")["model_version"] == 1
    store.switch(second)
    assert store.get("a")["segment"] == "seg-0002" and store.get("b") is None  # the old generation is gone
    assert list(store.states().index) == ["a"] and store.serving() == {"version": 2}
    assert not list(store.redis.scan_iter(match=f"asg:{first}:*"))
    store.write_live(states_frame(["c"], None, 2))
    assert store.get("c")["status"] == "noise" and store.get("c")["segment"] is None
    store.close()


def test_a_generation_written_in_script_chunks_reads_back_value_for_value(redis_url: str) -> None:
    store = AssignmentStore(redis_url)
    n = 5_500  # more than one pipeline and many script calls
    shops = [f"S{i:05d}" for i in range(n)]
    frame = states_frame(shops, "seg-0001", 3)
    noise = np.arange(n) % 7 == 0
    frame.loc[noise, ["segment", "name", "reason"]] = None
    frame.loc[noise, "status"] = "noise"
    frame["strength"] = np.where(noise, np.nan, np.round(np.linspace(0, 1, n), 6))
    store.switch(store.stage(frame.drop(columns=["since"]), {"version": 3}, {"version": 3}))  # a column missing
    back = store.states()
    assert list(back.index) == shops
    for column in ("segment", "name", "reason"):  # missing values read back as None
        assert back[column].tolist() == [None if flag else value for flag, value in zip(noise, frame[column],
                                                                                        strict=True)]
    assert back["since"].isna().all()
    np.testing.assert_array_equal(back["strength"].to_numpy(), np.nan_to_num(frame["strength"].to_numpy()))
    assert (back["model_version"] == 3).all() and back["status"].tolist() == frame["status"].tolist()
    raw = store.redis.hgetall(f"asg:{store.gen()}:r:S00007")
    assert raw == {b"segment": b"", b"name": b"", b"status": b"noise", b"strength": b"", b"model_version": b"3",
                   b"since": b"", b"reason": b""}
    store.close()


def test_the_write_ahead_record_is_typed_and_keeps_its_json_form() -> None:
    _, features = synthetic()
    outcome = relabel(Book(), features, quick_bundle(features), 1)
    model = {"version": 1, "sha256": "ab" * 32, "artifact_uri": "file:///v1", "feature_set": "behaviour-v2"}
    pending = PendingRelabel.from_outcome(outcome, model, utcnow(), "promote")
    record = orjson.loads(orjson.dumps(pending.to_json()))  # as Redis keeps it
    assert set(record) == {"version", "previous_version", "trigger", "at", "model", "segments", "retired",
                           "next_number", "lineage", "history", "changes", "counts", "promote"}
    assert record["promote"] is True and PendingRelabel.from_json(record) == pending
    assert [s["segment_id"] for s in record["segments"]] == [s.segment_id for s in outcome.segments]
    assert len(record["history"]) == int(outcome.assignments["moved"].sum()) > 0
    assert not PendingRelabel.from_outcome(outcome, model, utcnow(), "published").promote
    records = pending.event_records("tests")
    assert [r.topic for r in records] == ["segments.changes"] * len(outcome.changes) + ["segments.lineage"]
    ids = [dict(r.headers)["ce_id"] for r in records]
    assert ids == [dict(r.headers)["ce_id"] for r in pending.event_records("tests")]  # a replay repeats the ids
    assert len(set(ids)) == len(ids)


def test_relabel_stopped_after_staging_is_finished_at_start(world: dict[str, Any]) -> None:
    sales, features = synthetic()
    settings: Settings = world["settings"]
    load_feature_store(settings.redis_url, sales)
    info = publish_bundle(world["registry"], world["artifacts"], quick_bundle(features), world["tmp"])
    # what the service does before it crashes: relabel, then stage the generation and the write-ahead record
    outcome = relabel(Book(), features, quick_bundle(features), info.version)
    model = {"version": 1, "sha256": info.sha256, "artifact_uri": info.artifact_uri, "feature_set": "behaviour-v2"}
    at = utcnow()
    store = AssignmentStore(settings.redis_url)
    store.stage(next_states(outcome, None, at), serving_record(outcome, model),
                PendingRelabel.from_outcome(outcome, model, at, "published").to_json())
    assert store.gen() is None and world["registry"].segments.list_segments() == []

    app, client = start(settings)
    with client:
        wait_for(lambda: app.state.assigner.initialised.is_set(), what="initialisation")
        assert store.gen() is not None and store.pending() is None
        segments = world["registry"].segments
        assert [s.segment_id for s in segments.list_segments()] == [s.segment_id for s in outcome.segments]
        assert segments.get_lineage(1).payload == outcome.lineage
        assert segments.get_next_segment_number() == outcome.state.next_number
        lineage = wait_for(lambda: world["bus"].lineage_of(1), what="the lineage event")
        assert lineage == outcome.lineage
        assert len([c for c in world["bus"].changes if c["model_version"] == 1]) == len(outcome.changes)
        pd.testing.assert_series_equal(store.states()["segment"], outcome.assignments["segment"].sort_index(),
                                       check_names=False)
        assert app.state.assigner.serving.version == 1  # the catch-up found version 1 applied: no second relabel
    store.close()


def test_lost_redis_is_rebuilt_from_sql_and_missed_model_is_caught_up(world: dict[str, Any]) -> None:
    sales, features = synthetic()
    settings: Settings = world["settings"]
    registry = world["registry"]
    load_feature_store(settings.redis_url, sales)
    publish_bundle(registry, world["artifacts"], quick_bundle(features, seed=0), world["tmp"])
    app, client = start(settings)  # version 1 was never announced: the start catches up with the registry
    with client:
        wait_for(lambda: app.state.assigner.serving is not None, what="the catch-up relabel")
    store = AssignmentStore(settings.redis_url)
    before = store.states()
    assert (before["model_version"] == 1).all() and before["segment"].notna().any()
    store.wipe()  # Redis lost the assignments (the feature store keeps its keys)
    app, client = start(settings)
    with client:
        wait_for(lambda: app.state.assigner.initialised.is_set(), what="re-initialisation")
        after = store.states()
        pd.testing.assert_series_equal(after["segment"], before["segment"])
        pd.testing.assert_series_equal(after["status"], before["status"])
        assert app.state.assigner.serving.version == 1 and registry.segments.get_lineage(1) is not None
        shop = str(before.index[before["status"] == "assigned"][0])
        assert client.get(f"/v1/retailers/{shop}/segment").json()["segment_id"] == before.loc[shop, "segment"]
    store.close()
