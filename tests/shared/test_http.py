"""The HTTP service base (shared/http.py): probes, metrics, JSON errors, body limit, admin bearer token."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter, Depends, Request
from fastapi.testclient import TestClient

from shared.config import Settings
from shared.http import bearer_admin, create_service_app

APP_LIMIT = 200
ROUTE_LIMIT = 2_000


def _app(settings: Settings, readiness: dict | None = None):
    app = create_service_app("demo", settings, readiness or {}, max_body_bytes=APP_LIMIT)
    router = APIRouter()

    @router.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @router.post("/bulk", max_body_size=ROUTE_LIMIT)
    async def bulk(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @router.post("/admin", dependencies=[Depends(bearer_admin(settings))])
    async def admin() -> dict[str, bool]:
        return {"ok": True}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @router.get("/items/{n}")
    async def item(n: int) -> dict[str, int]:
        return {"n": n}

    app.include_router(router)
    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(_app(Settings(admin_token="s3cret")), raise_server_exceptions=False) as c:
        yield c


def test_healthz_is_cheap_and_ignores_dependencies() -> None:
    def broken() -> bool:
        raise AssertionError("liveness must not run readiness checks")

    with TestClient(_app(Settings(), {"kafka": broken})) as c:
        response = c.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "demo"}


def test_readyz_reports_each_check_and_names_the_failed_one() -> None:
    state = {"redis": True}

    async def slow() -> bool:
        await asyncio.sleep(10)
        return True

    def raises() -> bool:
        raise ConnectionError("down")

    checks = {"kafka": lambda: True, "redis": lambda: state["redis"], "db": raises, "slow": slow}
    app = create_service_app("demo", Settings(), checks, readiness_timeout=0.2)
    with TestClient(app) as c:
        body = c.get("/readyz").json()
        assert body["checks"] == {"kafka": True, "redis": True, "db": False, "slow": False}
        assert c.get("/readyz").status_code == 503
        assert "db" in body["detail"] and "slow" in body["detail"] and "kafka" not in body["detail"]

    ok = create_service_app("demo", Settings(), {"kafka": lambda: True})
    with TestClient(ok) as c:
        response = c.get("/readyz")
    assert response.status_code == 200 and response.json()["checks"] == {"kafka": True}


def test_errors_are_json_with_detail(client: TestClient) -> None:
    for response, status in (
        (client.get("/nowhere"), 404),
        (client.get("/items/not-a-number"), 422),
        (client.put("/healthz"), 405),
        (client.get("/boom"), 500),
    ):
        assert response.status_code == status
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["detail"]
    assert "a bug" not in client.get("/boom").text  # internals stay in the log


def test_body_limit_app_wide_and_per_route(client: TestClient) -> None:
    assert client.post("/echo", content=b"x" * APP_LIMIT).json() == {"bytes": APP_LIMIT}
    too_big = client.post("/echo", content=b"x" * (APP_LIMIT + 1))
    assert too_big.status_code == 413
    assert too_big.json() == {"detail": f"request body too large: the limit is {APP_LIMIT} bytes"}
    # a route's own limit overrides the app's
    assert client.post("/bulk", content=b"x" * ROUTE_LIMIT).json() == {"bytes": ROUTE_LIMIT}
    assert client.post("/bulk", content=b"x" * (ROUTE_LIMIT + 1)).status_code == 413


def test_body_limit_is_enforced_while_streaming() -> None:
    """No Content-Length (chunked upload): the limit trips while reading, long before the body ends."""
    app = _app(Settings())
    pulled: list[int] = []
    sent: list[dict] = []

    async def receive() -> dict:
        pulled.append(1)
        return {"type": "http.request", "body": b"y" * 100, "more_body": len(pulled) < 100_000}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/bulk", "raw_path": b"/bulk", "root_path": "", "query_string": b"",
        "headers": [(b"host", b"t"), (b"transfer-encoding", b"chunked")], "client": ("c", 1), "server": ("t", 80),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert len(pulled) <= ROUTE_LIMIT // 100 + 1
    assert f"the limit is {ROUTE_LIMIT} bytes".encode() in b"".join(m.get("body", b"") for m in sent[1:])


def test_oversized_content_length_is_refused_before_reading() -> None:
    async def scenario() -> httpx.Response:
        app = _app(Settings())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.post("/bulk", content=b"z" * (10 * 1024 * 1024))

    response = asyncio.run(scenario())
    assert response.status_code == 413
    assert response.json()["detail"] == f"request body too large: the limit is {ROUTE_LIMIT} bytes"


@pytest.mark.parametrize(
    ("headers", "status", "detail_part"),
    [
        ({}, 401, "missing"),
        ({"Authorization": "Basic czNjcmV0"}, 401, "not a bearer token"),
        ({"Authorization": "Bearer"}, 401, "not a bearer token"),
        ({"Authorization": "Bearer wrong"}, 403, "wrong"),
        ({"Authorization": "Bearer s3cret-but-longer"}, 403, "wrong"),
    ],
)
def test_admin_token_refusals(client: TestClient, headers: dict, status: int, detail_part: str) -> None:
    response = client.post("/admin", headers=headers)
    assert response.status_code == status
    assert detail_part in response.json()["detail"]
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_admin_token_accepted(client: TestClient) -> None:
    response = client.post("/admin", headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200 and response.json() == {"ok": True}


@pytest.mark.parametrize("token", [None, ""])
def test_admin_routes_disabled_without_a_configured_token(token: str | None) -> None:
    with TestClient(_app(Settings(admin_token=token))) as c:
        response = c.post("/admin", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 503
    assert "no admin token is configured" in response.json()["detail"]


def test_metrics_count_requests_per_route_template(client: TestClient) -> None:
    client.get("/items/1")
    client.get("/items/2")
    client.post("/echo", content=b"x" * (APP_LIMIT + 1))
    text = client.get("/metrics").text
    assert 'http_requests_total{handler="/items/{n}",method="GET",status="200"} 2.0' in text
    assert 'http_requests_total{handler="/echo",method="POST",status="413"} 1.0' in text
    assert "http_request_duration_seconds_bucket" in text
    assert "process_cpu_seconds_total" in text


def test_two_apps_in_one_process_keep_separate_metrics() -> None:
    first, second = _app(Settings()), _app(Settings())
    with TestClient(first) as a, TestClient(second) as b:
        a.get("/items/7")
        assert 'handler="/items/{n}"' in a.get("/metrics").text
        assert 'handler="/items/{n}"' not in b.get("/metrics").text


def test_openapi_documents_admin_security(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "stableseg demo"
    assert "AdminToken" in spec["components"]["securitySchemes"]
    assert spec["paths"]["/admin"]["post"]["security"] == [{"AdminToken": []}]
