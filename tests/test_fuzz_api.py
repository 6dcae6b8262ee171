"""Fuzz every service's OpenAPI with schemathesis against the running service (uvicorn, real broker, Redis, SQLite).

Checks: no server error, no undocumented status code, documented content types, responses conform to their
schemas. Positive and negative cases, a fixed seed; ``FUZZ_SEED`` and ``FUZZ_EXAMPLES`` (examples per operation
and mode) override both for a deeper run, e.g. ``FUZZ_SEED=7 FUZZ_EXAMPLES=200 pytest tests/test_fuzz_api.py``.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.strategies as st
import pytest
import redis
import requests
import schemathesis
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from services.trainer.announce import published_record
from shared.bus.topics import ensure_topics, topic_specs
from shared.config import Settings
from shared.stack import EmbeddedBroker, EmbeddedRedis, free_port
from shared.storage import ArtifactStore, Registry, upgrade_database
from tests.helpers import (
    Bus,
    load_feature_store,
    publish_bundle,
    quick_bundle,
    synthetic,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("fuzz")
SEED = int(os.environ.get("FUZZ_SEED", "20261201"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ADMIN, INGEST = "fuzz-admin-token", "fuzz-ingest-token"
DEEP = {"ingest": "POST /v1/sales 200", "assigner": "GET /v1/segments 200"}


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    """The ingest NDJSON body: the schema's array, one JSON value per line."""
    items = value if isinstance(value, list) else [value]
    return "\n".join(json.dumps(item) for item in items).encode()


@pytest.fixture(scope="module")
def fuzz_settings(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis) -> Iterator[Settings]:
    """Settings on a broker of this module's own (the assigner's retrain requests stay here) with both tokens."""
    data_dir = tmp_path_factory.mktemp("fuzz")
    broker = EmbeddedBroker(free_port(), data_dir / "broker", die_with_parent=True)
    broker.start()
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'stableseg.db'}",
                        artifact_uri=str(data_dir / "artifacts"), kafka_bootstrap=broker.bootstrap,
                        redis_url=redis_server.url, admin_token=ADMIN, ingest_token=INGEST, ingest_rate_limit="",
                        retrain_on_month_close=False)
    ensure_topics(settings.kafka_bootstrap, topic_specs(settings))
    upgrade_database(settings.effective_database_url)
    yield settings
    broker.stop()


def _serve_a_model(settings: Settings, tmp: Path) -> None:
    """A published model and a filled feature store, so the assigner's routes answer 200 rather than 503."""
    with redis.Redis.from_url(settings.redis_url) as client:
        client.flushall()
    sales, features = synthetic(300, 3, 5)
    load_feature_store(settings.redis_url, sales)
    registry = Registry(settings.effective_database_url)
    bus = Bus(settings.kafka_bootstrap)
    try:
        info = publish_bundle(registry, ArtifactStore(settings.effective_artifact_uri),
                              quick_bundle(features, min_cluster_size=15), tmp)
        bus.send(published_record(info))
        wait_for(lambda: bus.lineage_of(info.version), what="the assigner applying the model")
    finally:
        bus.close()
        registry.close()


class Running:
    """One service's app served by uvicorn in a thread on a free port."""

    def __init__(self, service: str, settings: Settings) -> None:
        app = importlib.import_module(f"services.{service}.app").create_app(settings)
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while not self._ready():
            assert time.monotonic() < deadline, f"{service} never became ready"
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.base}/readyz", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture
def running(request: pytest.FixtureRequest, fuzz_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The base URL of the service named by the test's parameter, running until the test ends (one at a time:
    the trainer is gone before the assigner's fuzzed retrain requests arrive)."""
    service = Running(request.param, fuzz_settings)
    try:
        if request.param == "assigner":
            _serve_a_model(fuzz_settings, tmp_path)
        yield request.param, service.base
    finally:
        service.stop()


def _fuzz_operation(operation: schemathesis.APIOperation, call: Callable[[schemathesis.Case], None]) -> None:
    """Hypothesis-run ``call`` on positive and negative cases of ``operation`` (fixed seed, no example database)."""
    strategy = st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                         operation.as_strategy(schemathesis.GenerationMode.NEGATIVE))

    @hypothesis.seed(SEED)
    @hypothesis.settings(max_examples=EXAMPLES * 2, deadline=None, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate])
    @hypothesis.given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        call(case)

    run()


def _fuzz(base: str, headers: dict[str, str]) -> tuple[list[str], Counter[str], set[str]]:
    """Run every operation of the service at ``base``: (one line per operation that failed a check, how often
    each "METHOD path status" was answered, every operation's label)."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    session = requests.Session()
    failures: list[str] = []
    seen: Counter[str] = Counter()
    labels: set[str] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.add(operation.label)

        def call(case: schemathesis.Case) -> None:
            response = case.call_and_validate(base_url=base, session=session, headers=headers, checks=CHECKS,
                                              timeout=30)
            seen[f"{case.operation.label} {response.status_code}"] += 1

        try:
            _fuzz_operation(operation, call)
        except (Exception, BaseExceptionGroup) as exc:  # one line per failing operation, all asserted below
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    return failures, seen, labels


@pytest.mark.parametrize("running", ["ingest", "features", "trainer", "assigner"], indirect=True)
def test_openapi_fuzz_finds_nothing(running: tuple[str, str]) -> None:
    service, base = running
    headers = {"Authorization": f"Bearer {INGEST if service == 'ingest' else ADMIN}"}
    failures, seen, labels = _fuzz(base, headers)
    print(f"{service}: seed {SEED}, answers {dict(sorted(seen.items()))}")
    assert not failures, f"seed {SEED}, {EXAMPLES} examples:\n" + "\n\n".join(failures)
    assert {answer.rsplit(" ", 1)[0] for answer in seen} == labels  # every operation was really called
    if service in DEEP:  # the fuzzer got past auth into the route's own logic
        assert seen[DEEP[service]] > 0, seen


def test_the_fuzzer_sees_a_real_failure(tmp_path: Path) -> None:
    """The harness itself can fail: an app that answers an undocumented 418 is reported."""
    app = FastAPI()

    @app.get("/teapot")
    async def teapot() -> JSONResponse:
        return JSONResponse({"detail": "short and stout"}, status_code=418)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        failures, _, _ = _fuzz(f"http://127.0.0.1:{port}", {})
    finally:
        server.should_exit = True
        thread.join(10)
    assert len(failures) == 1 and "418" in failures[0], failures
