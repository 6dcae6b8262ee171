"""The HTTP service base every stableseg service stands on.

``create_service_app`` gives a FastAPI app with

- ``GET /healthz``: liveness, cheap, never touches a dependency;
- ``GET /readyz``: runs the readiness checks concurrently (each bounded by a timeout); 200 when all pass, else
  503 with ``detail`` naming the failed dependencies and ``checks`` holding every result;
- ``GET /metrics``: Prometheus text via prometheus-fastapi-instrumentator, on a registry of the app's own
  (``app.state.metrics_registry``) so several apps can live in one process; services register their custom
  metrics there too (base units, ``_total`` counters, no per-retailer labels);
- JSON errors with ``detail`` everywhere (FastAPI's handlers for HTTP and validation errors, plus a JSON 500);
- a request body limit (FastAPI's ``max_body_size``, enforced while the body streams in, and up front from
  ``Content-Length``): app-wide via ``max_body_bytes``, per route via ``@router.post(..., max_body_size=N)``;
  the 413 is JSON and names the limit;
- one structured log line per request (method, path, status, duration).

``bearer_admin(settings)`` is the dependency guarding admin routes.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.config import Settings
from shared.logging import get_logger

ReadinessCheck = Callable[[], Awaitable[bool] | bool]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
READINESS_TIMEOUT_SECONDS = 3.0
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

log = get_logger("stableseg.http")


def create_service_app(
    name: str,
    settings: Settings,
    readiness: Mapping[str, ReadinessCheck],
    lifespan: Lifespan | None = None,
    *,
    max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES,
    readiness_timeout: float = READINESS_TIMEOUT_SECONDS,
    version: str = "0.1.0",
) -> FastAPI:
    """A FastAPI app with health, readiness, metrics, JSON errors, a body limit and request logging."""
    app = ServiceApp(title=f"stableseg {name}", version=version, lifespan=lifespan, max_body_size=max_body_bytes)
    app.state.service_name = name
    app.state.settings = settings
    app.state.readiness = dict(readiness)

    registry = CollectorRegistry()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    app.state.metrics_registry = registry
    Instrumentator(
        should_group_status_codes=False, excluded_handlers=["/metrics"], registry=registry
    ).instrument(app).expose(app, endpoint="/metrics", include_in_schema=False)

    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(RequestLogMiddleware, service=name)

    @app.get("/healthz", tags=["health"], summary="Liveness: the process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": name}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Readiness: every dependency is reachable",
        responses={503: {"description": "a dependency is not ready; `detail` names it"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        checks = await run_readiness(request.app.state.readiness, readiness_timeout)
        failed = [check for check, ok in checks.items() if not ok]
        if failed:
            detail = f"not ready: {', '.join(failed)} unavailable"
            return JSONResponse({"detail": detail, "service": name, "checks": checks}, status_code=503)
        return JSONResponse({"status": "ready", "service": name, "checks": checks})

    return app


class ServiceApp(FastAPI):
    """FastAPI whose body-limit 413 is JSON in every case (Starlette answers plain text when ``Content-Length``
    alone exceeds the limit)."""

    def build_middleware_stack(self) -> ASGIApp:
        return _JsonTooLarge(super().build_middleware_stack())


def _too_large_detail(limit: object) -> str:
    return f"request body too large: the limit is {limit} bytes"


class _JsonTooLarge:
    """Rewrites Starlette's plain-text 413 from the body limiter into a JSON ``detail`` naming the limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rewriting = False

        async def send_json(message: Message) -> None:
            nonlocal rewriting
            if message["type"] == "http.response.start" and message["status"] == 413:
                headers = dict(message.get("headers", []))
                rewriting = headers.get(b"content-type", b"").startswith(b"text/plain")
            if not rewriting:
                await send(message)
                return
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                body = json.dumps({"detail": _too_large_detail(scope.get(MAX_BODY_SIZE_SCOPE_KEY))}).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 413, "headers": headers})
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_json)


async def run_readiness(checks: Mapping[str, ReadinessCheck], timeout: float) -> dict[str, bool]:
    """Run every check concurrently; a check that raises, times out or returns falsy counts as failed."""

    async def one(check_name: str, check: ReadinessCheck) -> bool:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, timeout)
            return bool(result)
        except Exception as exc:  # a failing probe means "not ready", never a 500
            log.warning("readiness_check_failed", check=check_name, error=repr(exc))
            return False

    results = await asyncio.gather(*(one(n, c) for n, c in checks.items()))
    return dict(zip(checks, results, strict=True))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's JSON error, with a 413 that names the limit."""
    assert isinstance(exc, HTTPException)
    limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
    if exc.status_code == 413 and exc.detail == "Content Too Large" and limit is not None:
        exc = HTTPException(413, _too_large_detail(limit), exc.headers)
    return await http_exception_handler(request, exc)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_error", path=request.url.path, error=repr(exc), exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


class RequestLogMiddleware:
    """One structlog line per HTTP request (probes and metrics scrapes at debug level)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            path = scope.get("path", "")
            emit = log.debug if path in _QUIET_PATHS and status < 500 else log.info
            emit(
                "http_request",
                service=self.service,
                method=scope.get("method"),
                path=path,
                status=status,
                duration_ms=round((time.perf_counter() - start) * 1000, 2),
            )


_bearer_scheme = HTTPBearer(auto_error=False, description="`Authorization: Bearer $STABLESEG_ADMIN_TOKEN`")


def bearer_admin(settings: Settings) -> Callable[..., Awaitable[None]]:
    """Dependency for admin routes: ``Authorization: Bearer <STABLESEG_ADMIN_TOKEN>``.

    503 when no admin token is configured (admin routes are disabled), 401 when the header is missing or
    not a bearer token, 403 when the token is wrong. Tokens are compared with ``secrets.compare_digest``.
    """

    async def require_admin(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)]
    ) -> None:
        expected = settings.admin_token.get_secret_value() if settings.admin_token else ""
        if not expected:
            raise HTTPException(503, "admin routes are disabled: no admin token is configured (STABLESEG_ADMIN_TOKEN)")
        if credentials is None:
            problem = "missing" if "authorization" not in request.headers else "not a bearer token"
            raise HTTPException(
                401, f"admin token required: Authorization header {problem}", {"WWW-Authenticate": "Bearer"}
            )
        if not secrets.compare_digest(credentials.credentials.encode(), expected.encode()):
            raise HTTPException(403, "admin token is wrong")

    return require_admin


def serve(app: FastAPI, settings: Settings, port: int) -> None:
    """Run ``app`` in the foreground with uvicorn (one worker) on ``settings.bind_host:port`` until SIGTERM/SIGINT.

    Requests are logged by this module's middleware, so uvicorn's access log is off; shutdown is graceful for 15 s.
    """
    uvicorn.run(app, host=settings.bind_host, port=port, log_config=None, access_log=False,
                timeout_graceful_shutdown=15)  # fmt: skip
