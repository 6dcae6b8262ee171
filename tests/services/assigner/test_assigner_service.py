"""The assigner service end to end on a real broker (tansu), real Redis and a real SQLite registry.

One scenario, in order: 503 before any model; models.published -> every retailer assigned, change and lineage
events, history in SQL, segments and models in the API; a reseeded retrain keeps ids; a tampered artifact is
refused and the current model keeps serving; features.updated assigns a new retailer and marks an ineligible
one; an admin roll back relabels and publishes; a restart rebuilds nothing and keeps serving.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from jsonschema import validate

from services.assigner.store import AssignmentStore
from services.trainer.announce import published_record
from shared.bus import encode_event
from shared.bus.topics import FEATURES_UPDATED
from shared.config import Settings
from shared.storage import ModelVersionInfo
from tests.helpers import assigner_app, load_feature_store, publish_bundle, quick_bundle, synthetic, wait_for

pytestmark = pytest.mark.xdist_group("assigner")
ASYNCAPI = yaml.safe_load((Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml").read_text())
TOKEN = "s3cret-admin"


@pytest.fixture
def admin_token() -> str:
    """The world's admin routes are guarded (``conftest.world``)."""
    return TOKEN


def announce(world: dict[str, Any], info: ModelVersionInfo) -> None:
    world["bus"].send(published_record(info))


def segment(client: TestClient, shop: str) -> dict[str, Any]:
    response = client.get(f"/v1/retailers/{shop}/segment")
    assert response.status_code == 200, response.text
    return response.json()


def test_assigner_end_to_end(world: dict[str, Any]) -> None:
    sales, features = synthetic()
    registry, bus = world["registry"], world["bus"]
    settings: Settings = world["settings"]
    app = assigner_app(settings)
    with TestClient(app) as client:
        wait_for(lambda: app.state.assigner.initialised.is_set(), what="initialisation")
        shop = str(features.index[0])
        assert client.get(f"/v1/retailers/{shop}/segment").status_code == 503
        assert client.get("/v1/segments").status_code == 503
        assert client.get("/v1/models/current").json()["detail"].startswith("no model has been applied yet")

        # --- first model: every eligible retailer is assigned --------------------------------------------------
        load_feature_store(settings.redis_url, sales)
        v1 = publish_bundle(registry, world["artifacts"], quick_bundle(features, seed=0), world["tmp"])
        announce(world, v1)
        lineage1 = wait_for(lambda: bus.lineage_of(1), what="lineage of version 1")
        states1 = AssignmentStore(settings.redis_url).states()
        assert set(states1.index) == {str(s) for s in features.index}
        assigned = states1[states1["status"] == "assigned"]
        assert len(assigned) > 0.5 * len(features) and set(lineage1["born"]) == set(assigned["segment"])
        first = [c for c in bus.changes if c["model_version"] == 1]
        assert len(first) == len(assigned)  # noise retailers had no segment and get none: no change event
        assert {c["reason"] for c in first} == {"new-retailer"} and all(c["from_segment"] is None for c in first)
        for payload, message in [*((c, "segmentChange") for c in first[:20]), (lineage1, "segmentLineage")]:
            validate(payload, ASYNCAPI["components"]["messages"][message]["payload"])
        body = segment(client, str(assigned.index[0]))
        assert body["status"] == "assigned" and body["model_version"] == 1 and body["segment_id"].startswith("seg-")
        assert body["segment_name"] and body["since"]
        segments = client.get("/v1/segments").json()
        assert segments["model_version"] == 1
        sizes = {s["segment_id"]: s["size"] for s in segments["segments"]}
        assert sizes == assigned["segment"].value_counts().to_dict()
        one = client.get(f"/v1/segments/{segments['segments'][0]['segment_id']}").json()
        assert len(one["profile"]["seasonality"]) == 12 and abs(sum(one["profile"]["seasonality"]) - 1) < 1e-4
        assert one["first_version"] == one["last_version"] == 1 and "sales_trend" in one["profile"]["features"]
        history = client.get(f"/v1/retailers/{assigned.index[0]}/history").json()["history"]
        assert len(history) == 1 and history[0]["valid_to"] is None and history[0]["reason"] == "new-retailer"

        # --- a reseeded retrain of the same data keeps ids -----------------------------------------------------
        v2 = publish_bundle(registry, world["artifacts"], quick_bundle(features, seed=1), world["tmp"])
        announce(world, v2)
        lineage2 = wait_for(lambda: bus.lineage_of(2), what="lineage of version 2")
        assert lineage2["previous_version"] == 1 and len(lineage2["continued"]) >= 1
        states2 = AssignmentStore(settings.redis_url).states()
        kept = (states2.loc[assigned.index, "segment"] == assigned["segment"]).mean()
        assert kept >= 0.9, kept
        assert set(states2["model_version"]) == {2}
        changed2 = [c for c in bus.changes if c["model_version"] == 2]
        moved = states2.loc[assigned.index, "segment"].fillna("") != assigned["segment"]
        assert {c["shop_id"] for c in changed2} >= set(moved[moved].index)
        announce(world, v2)  # a repeated announcement is a no-op
        time.sleep(1.0)
        assert len([c for c in (bus.poll() or bus.changes) if c["model_version"] == 2]) == len(changed2)

        # --- a tampered artifact is refused; version 2 keeps serving --------------------------------------------
        v3 = publish_bundle(registry, world["artifacts"], quick_bundle(features, seed=2), world["tmp"])
        scaler = Path(v3.artifact_uri.removeprefix("file://")) / "scaler.joblib"
        scaler.write_bytes(scaler.read_bytes() + b"tampered")
        announce(world, v3)
        wait_for(lambda: "stableseg_assigner_model_refusals_total 1.0" in client.get("/metrics").text,
                 what="the refusal")
        assert client.get("/v1/models/current").json()["version"] == 2
        assert bus.lineage_of(3) is None

        # --- features.updated: a new retailer is assigned at once, an ineligible one is held until a retrain ---
        newcomer = f"NEW-{assigned.index[1]}"
        renamed = sales[sales["shop_id"] == assigned.index[1]].assign(shop_id=newcomer)
        events = load_feature_store(settings.redis_url, renamed, revision=5)
        leaving = str(assigned.index[2])
        events.append({"shop_id": leaving, "feature_set": "behaviour-v2", "as_of": "2025-12", "eligible": False})
        for event in events:
            bus.send(encode_event(FEATURES_UPDATED, event, key=event["shop_id"], source="test"))
        assert segment(client, newcomer)["status"] == "unknown"  # in the feature store, not assigned yet
        new_state = wait_for(lambda: (r := segment(client, newcomer))["status"] != "unknown" and r,
                             what="the newcomer's assignment")
        assert new_state["status"] == "assigned" and new_state["segment_id"] == states2.loc[assigned.index[1],
                                                                                             "segment"]
        time.sleep(1.0)  # the leaving retailer's event was handled with the newcomer's
        bus.poll()
        online = {c["shop_id"]: c for c in bus.changes if c["reason"] in ("features", "new-retailer")
                  and c["model_version"] == 2}
        assert online[newcomer]["reason"] == "new-retailer" and online[newcomer]["from_segment"] is None
        # online only adds: the retailer that turned ineligible keeps its segment until a retrain decides
        assert leaving not in online and segment(client, leaving)["segment_id"] == states2.loc[leaving, "segment"]
        statuses = [h.status for h in registry.assignments.history(leaving)]
        assert statuses[-1] == states2.loc[leaving, "status"] != "ineligible"

        # --- admin roll back to version 1 ----------------------------------------------------------------------
        assert client.post("/v1/models/1/promote").status_code == 401
        assert client.post("/v1/models/1/promote", headers={"Authorization": "Bearer nope"}).status_code == 403
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert client.post("/v1/models/99/promote", headers=auth).status_code == 404
        assert client.post("/v1/models/3/promote", headers=auth).status_code == 409
        rolled = client.post("/v1/models/1/promote", headers=auth)
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["previous_version"] == 2 and registry.versions.current().version == 1
        assert client.get("/v1/models/current").json()["version"] == 1
        assert segment(client, str(assigned.index[0]))["model_version"] == 1
        assert client.post("/v1/retrain", headers=auth, json={"reason": "test"}).status_code == 202
        stranger = uuid.uuid4().hex
        assert client.get(f"/v1/retailers/{stranger}/segment").json()["detail"].startswith(f"retailer '{stranger}'")
        assert client.get(f"/v1/retailers/{stranger}/history").status_code == 404
        assert client.get("/v1/segments/seg-9999").status_code == 404
        assert "expected 'seg-NNNN'" in client.get("/v1/segments/bogus").json()["detail"]
        models = client.get("/v1/models").json()
        assert [m["version"] for m in models["models"]] == [1, 2, 3] and models["serving_version"] == 1
        assert [m["serving"] for m in models["models"]] == [True, False, False]

    # --- a restart serves the same assignments without relabelling ----------------------------------------------
    before = AssignmentStore(settings.redis_url).states()
    app2 = assigner_app(settings)
    with TestClient(app2) as client:
        wait_for(lambda: app2.state.assigner.initialised.is_set(), what="re-initialisation")
        assert app2.state.assigner.serving.version == 1
        pd.testing.assert_frame_equal(AssignmentStore(settings.redis_url).states(), before)
        # ready once the Kafka link has reconnected (it connects in the background, after initialisation)
        ready = wait_for(lambda: (r := client.get("/readyz")).status_code == 200 and r, what="readiness")
        assert ready.json()["checks"] == {"redis": True, "database": True, "kafka": True}
