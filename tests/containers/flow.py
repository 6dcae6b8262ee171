"""The demo's path through the containers: stream generated sales into the ingest container, wait for the features
container, retrain in the trainer container, read segments from the assigner container."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from services.demo.observe import ApiError, AssignerClient
from services.demo.stream import IngestClient, read_months
from services.demo.waits import TRANSIENT, AssignerProbe, FeaturesProbe, LabelWatch, TrainingWatch
from shared.config import Settings
from shared.data.generator import generate
from tests.containers import podman
from tests.containers.checks import CheckFailed
from tests.containers.compose import ContainerSpec

RETAILERS, YEARS, SEED = 400, 3, 7
SEGMENT_ID = re.compile(r"seg-\d{4}")


def wait_for(check: Callable[[], tuple[bool, str]], what: str, timeout: float, specs: list[ContainerSpec]) -> str:
    """Call ``check`` until done; transient errors count as not yet; a container that stopped ends the wait."""
    deadline, detail = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        for spec in specs:
            if not podman.state(spec.name).get("Running"):
                raise CheckFailed(f"{what}: the {spec.service} container stopped:\n{podman.logs(spec.name)}")
        try:
            done, detail = check()
        except (ApiError, *TRANSIENT) as exc:
            done, detail = False, repr(exc)
        if done:
            return detail
        time.sleep(1.0)
    raise CheckFailed(f"{what}: not done after {timeout:.0f} s ({detail})")


def _retrain(settings: Settings, token: str) -> None:
    response = httpx.post(f"http://127.0.0.1:{settings.assigner_port}/v1/retrain", json={"reason": "container test"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30.0)
    if response.status_code != 202:
        raise CheckFailed(f"POST /v1/retrain answered {response.status_code}: {response.text[:300]}")


def _stream(settings: Settings, out: Path, token: str) -> dict[str, Any]:
    summary = generate(RETAILERS, YEARS, SEED, out)
    ingest = IngestClient(f"http://127.0.0.1:{settings.ingest_port}", 5000, token=token)
    try:
        streamed = ingest.stream(read_months(summary.sales_path))
    finally:
        ingest.close()
    if streamed.accepted != summary.rows or streamed.rejected:
        raise CheckFailed(f"ingest accepted {streamed.accepted} of {summary.rows} rows, rejected {streamed.rejected}")
    return {"rows": summary.rows, "retailers": summary.retailers, "requests": streamed.requests}


def demo_flow(settings: Settings, token: str, specs: list[ContainerSpec]) -> dict[str, Any]:
    """Stream, wait for features, retrain, read segments; what happened and how long each step took."""
    report: dict[str, Any] = {}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stableseg-ct-data-") as tmp:
        report["streamed"] = _stream(settings, Path(tmp), token)
    report["stream_s"] = round(time.monotonic() - began, 1)
    print(f"[container-test] streamed {report['streamed']} through the ingest container", flush=True)
    features = FeaturesProbe(settings)
    try:
        wait_for(features, "feature store catch-up", 300, specs)
        eligible = features.eligible(settings.feature_set)
    finally:
        features.close()
    report["features_s"], report["eligible"] = round(time.monotonic() - began, 1), len(eligible)
    print(f"[container-test] features caught up: {len(eligible)} eligible retailers", flush=True)
    watch = TrainingWatch(settings)
    _retrain(settings, token)
    wait_for(watch, "training in the trainer container", 600, specs)
    assert watch.event is not None
    report["model"] = {k: watch.event[k] for k in ("version", "artifact_uri", "feature_set")}
    report["train_s"] = round(time.monotonic() - began, 1)
    print(f"[container-test] the trainer container published {report['model']}", flush=True)
    report["segment"] = _segments(settings, watch.event["version"], eligible, specs)
    report["total_s"] = round(time.monotonic() - began, 1)
    return report


def _segments(settings: Settings, version: int, eligible: list[str], specs: list[ContainerSpec]) -> dict[str, Any]:
    client = AssignerClient(settings.assigner_port)
    wait_for(AssignerProbe(settings, client, version), "assigner relabel", 300, specs)
    labels = LabelWatch(client, settings.redis_url, eligible)
    try:
        wait_for(labels, "labels of every eligible retailer", 300, specs)
    finally:
        labels.close()
    assigned = [shop for shop, answer in labels.answers.items() if answer["status"] == "assigned"]
    if not assigned:
        raise CheckFailed(f"no retailer got a segment from model {version}")
    answer = client.retailers(assigned[:1])[assigned[0]]
    if not SEGMENT_ID.fullmatch(str(answer.get("segment_id"))) or answer.get("model_version") != version:
        raise CheckFailed(f"GET /v1/retailers/{assigned[0]}/segment answered {answer}")
    return {"assigned": len(assigned), "example": answer}
