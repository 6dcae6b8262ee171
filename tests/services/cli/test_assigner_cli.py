"""``stableseg segment SHOP_ID`` when the assigner API is down: the answer comes from the real stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from services.assigner.store import AssignmentStore
from services.cli.main import app
from shared.config import get_settings
from shared.stack import free_port
from shared.storage import AssignmentChange, Registry

pytestmark = pytest.mark.xdist_group("assigner")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path) -> str:
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    monkeypatch.setenv("STABLESEG_REDIS_URL", redis_url)
    monkeypatch.setenv("STABLESEG_DATABASE_URL", database)
    get_settings.cache_clear()
    yield database
    get_settings.cache_clear()


def test_segment_command_reads_the_stores_when_the_api_is_down(env: str, redis_url: str) -> None:
    runner = CliRunner()
    closed = f"http://127.0.0.1:{free_port()}"
    no_model = runner.invoke(app, ["segment", "S1", "--url", closed])
    assert no_model.exit_code == 2 and "no model has been applied yet" in no_model.output

    store = AssignmentStore(redis_url)
    index = pd.Index(["S1"], name="shop_id", dtype=object)
    states = pd.DataFrame({"segment": "seg-0003", "name": "festive peak · growing", "status": "assigned",
                           "strength": 0.81, "model_version": 4, "since": "2025-03-01T00:00:00+00:00",
                           "reason": "retrain"}, index=index)
    store.switch(store.stage(states, {"version": 4}, {"version": 4}))
    found = runner.invoke(app, ["segment", "S1", "--url", closed, "--json"])
    assert found.exit_code == 0, found.output
    body = json.loads(found.output)
    assert (body["segment_id"], body["status"], body["model_version"]) == ("seg-0003", "assigned", 4)
    table = runner.invoke(app, ["segment", "S1", "--url", closed])
    assert "festive peak · growing" in table.output
    unknown = runner.invoke(app, ["segment", "S9", "--url", closed])
    assert unknown.exit_code == 1 and "has no assignment" in unknown.output

    with Registry.open(env) as registry:
        number = registry.versions.register_candidate(feature_set="behaviour-v2", params={}, metrics={},
                                                      training_rows=1, data_as_of="2025-01", seed=1, artifact_uri="x",
                                                      sha256="0" * 64)
        registry.versions.mark_published(number)
        assignments = registry.assignments
        assignments.record_assignments([AssignmentChange("S1", None, "noise", 0.0, "new-retailer")], number,
                                       at=datetime(2025, 1, 1, tzinfo=UTC))
        assignments.record_assignments([AssignmentChange("S1", "seg-0003", "assigned", 0.8, "retrain")], number,
                                       at=datetime(2025, 3, 1, tzinfo=UTC))
    history = runner.invoke(app, ["segment", "S1", "--url", closed, "--history", "--json"])
    assert history.exit_code == 0, history.output
    rows = json.loads(history.output)["history"]
    assert [(r["status"], r["segment_id"]) for r in rows] == [("noise", None), ("assigned", "seg-0003")]
    store.close()
