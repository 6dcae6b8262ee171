"""Write auth, open-bind refusal, rate limit and slow-client limits of the HTTP services (real broker for ingest)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.ingest.app import create_app as create_ingest
from shared.auth import OpenBindRefused, check_open_bind, is_loopback
from shared.config import Settings
from shared.http import create_service_app, serve
from shared.limits import server_limits
from shared.stack import free_port

TOKEN = "ingest-t0ken-for-tests"
RECORD = {"shop_id": "auth-shop", "product_id": "P1", "year": 2024, "month": 1, "sales_qty": 3}


def _ready(client: TestClient, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.1)


@pytest.fixture
def ingest(settings: Settings, topics: dict[str, int]) -> Iterator[TestClient]:
    secured = settings.model_copy(update={"ingest_token": SecretStr(TOKEN), "ingest_rate_limit": "6/minute"})
    with TestClient(create_ingest(secured, topic_check_interval=0.2), raise_server_exceptions=False) as client:
        _ready(client)
        yield client


def test_ingest_token_401_403_200_then_rate_limited(ingest: TestClient) -> None:
    missing = ingest.post("/v1/sales", json=[RECORD])
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "ingest token required" in missing.json()["detail"]
    wrong = ingest.post("/v1/sales", json=[RECORD], headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["detail"] == "ingest token is wrong"
    good = {"Authorization": f"Bearer {TOKEN}"}
    ok = ingest.post("/v1/sales", json=[RECORD, {"shop_id": ""}], headers=good)
    assert ok.status_code == 200, ok.text
    assert ok.json()["accepted"] == 1 and ok.json()["rejected"] == 1
    answers = [ingest.post("/v1/sales", json=[RECORD], headers=good) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]  # 6 per minute: 3 refused + 3 accepted above
    assert answers[3].status_code == 429
    assert 1 <= int(answers[3].headers["retry-after"]) <= 60
    assert "rate limit of 6 per 1 minute" in answers[3].json()["detail"]


def test_ingest_openapi_documents_auth_and_limits(ingest: TestClient) -> None:
    spec = ingest.get("/openapi.json").json()
    operation = spec["paths"]["/v1/sales"]["post"]
    assert operation["security"] == [{"IngestToken": []}]
    assert {"401", "403", "408", "413", "429"} <= set(operation["responses"])
    assert "x-stableseg-rate-limited" not in operation
    assert spec["components"]["securitySchemes"]["IngestToken"]["scheme"] == "bearer"


HOSTS = [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("10.1.2.3", False),
         ("ingest.svc", False)]


@pytest.mark.parametrize(("host", "loopback"), HOSTS)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_open_bind_needs_the_write_token_or_an_explicit_setting() -> None:
    check_open_bind(Settings(bind_host="127.0.0.1"), ("ingest_token",))
    check_open_bind(Settings(bind_host="0.0.0.0"), ())  # a service without write routes
    check_open_bind(Settings(bind_host="0.0.0.0", ingest_token="x"), ("ingest_token",))
    check_open_bind(Settings(bind_host="0.0.0.0", allow_unauthenticated=True), ("ingest_token",))
    with pytest.raises(OpenBindRefused, match=r"without STABLESEG_ADMIN_TOKEN.*STABLESEG_ALLOW_UNAUTHENTICATED"):
        check_open_bind(Settings(bind_host="0.0.0.0", ingest_token="x"), ("ingest_token", "admin_token"))


def test_serve_refuses_an_open_ingest_before_listening() -> None:
    settings = Settings(bind_host="0.0.0.0", kafka_bootstrap="127.0.0.1:1")
    with pytest.raises(OpenBindRefused, match="STABLESEG_INGEST_TOKEN"):
        serve(create_ingest(settings), settings, free_port())


def _slow_app(settings: Settings) -> FastAPI:
    app = create_service_app("slow", settings, {})

    @app.post("/echo")
    async def echo(body: dict) -> dict:
        return body

    return app


def test_a_body_that_trickles_in_gets_408() -> None:
    app = _slow_app(Settings(http_body_timeout_seconds=0.3))

    async def trickle() -> httpx.Response:
        async def chunks():
            yield b'{"a":'
            await asyncio.sleep(1.0)
            yield b"1}"

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.post("/echo", content=chunks(), headers={"content-type": "application/json"})

    response = asyncio.run(trickle())
    assert response.status_code == 408
    assert response.json()["detail"] == "request body not received within 0.3 s"
    with TestClient(app) as client:
        assert client.post("/echo", json={"a": 1}).json() == {"a": 1}


@pytest.fixture
def slow_server() -> Iterator[int]:
    settings = Settings(http_header_timeout_seconds=0.5)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_slow_app(settings), port=port, log_config=None, **server_limits(settings)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(10)


def test_headers_that_trickle_in_get_the_connection_closed(slow_server: int) -> None:
    with socket.create_connection(("127.0.0.1", slow_server), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server, no answer
        assert 0.3 < time.monotonic() - start < 3.0
    response = httpx.post(f"http://127.0.0.1:{slow_server}/echo", json={"b": 2}, timeout=5)
    assert response.json() == {"b": 2}  # a prompt client is served
