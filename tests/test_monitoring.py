"""The operations files under ``k8s/monitoring/``: the Grafana dashboard (JSON structure, a valid layout, PromQL
that parses) and the Prometheus alert rules (rule-file structure, durations, PromQL that parses, with
``promql-parser``, the Prometheus grammar), and that every metric they name is exposed by a service's real
``/metrics`` (the four apps, the features one started against the real broker and Redis)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from shared.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "k8s" / "monitoring" / "grafana-dashboard.json"
RULES = ROOT / "k8s" / "monitoring" / "prometheus-rules.yaml"
PANEL_TYPES = {"row", "timeseries", "stat", "bargauge"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",), "summary": ("_sum", "_count", "_created")}


def parse(expr: str) -> Any:
    """A PromQL expression parsed, Grafana's template variables (``$job``) standing in as label values."""
    return promql_parser.parse(re.sub(r"\$\{?\w+\}?", "x", expr))


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(parse(expr), visit)
    return names


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_dashboard_structure_and_layout() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "job"} <= variables
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        assert panel["type"] in PANEL_TYPES and panel["title"], panel
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        xs, ys = range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
        area = {(x, y) for x in xs for y in ys}
        assert not cells & area, f"panel {panel['title']!r} overlaps another"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        for target in panel["targets"]:
            parse(target["expr"])  # raises ValueError naming the problem
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for topic in ("ingest", "lag", "recompute", "training duration", "outcomes", "latency", "error"):
        assert topic in titles, f"the dashboard has no panel about {topic}"


def test_alert_rules_structure() -> None:
    document = yaml.safe_load(RULES.read_text())
    assert len({g["name"] for g in document["groups"]}) == len(document["groups"])
    alerts = [r["alert"] for r in rules()]
    assert len(alerts) == len(set(alerts)) and all(re.fullmatch(r"Stableseg[A-Z][A-Za-z0-9]+", a) for a in alerts)
    for rule in rules():
        parse(rule["expr"])
        if "for" in rule:  # absent = fire at once
            promql_parser.parse_duration(rule["for"])
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
    named = " ".join(alerts).lower()
    for topic in ("lag", "trainerfailures", "5xx"):
        assert topic in named, f"no alert about {topic}"
    with pytest.raises(ValueError):
        parse("sum(rate(http_requests_total[5m])")  # the parser does refuse broken PromQL


def exposed(text: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def test_every_metric_used_is_exposed(settings: Settings, topics: dict[str, int]) -> None:
    from services.assigner.app import create_app as assigner_app
    from services.features.app import create_app as features_app
    from services.ingest.app import create_app as ingest_app
    from services.trainer.app import create_app as trainer_app

    names: set[str] = set()
    for create in (ingest_app, trainer_app, assigner_app):
        client = TestClient(create(settings))  # metrics are registered when the app is created
        client.get("/healthz")
        names |= exposed(client.get("/metrics").text)
    with TestClient(features_app(settings)) as client:  # the features worker registers its metrics at start
        client.get("/healthz")
        names |= exposed(client.get("/metrics").text)
    used = set().union(*(metric_names(e) for e in dashboard_exprs() + [r["expr"] for r in rules()]))
    assert used and {"stableseg_features_consumer_lag", "http_requests_total"} <= used
    assert used <= names, f"not exposed by any service: {sorted(used - names)}"
