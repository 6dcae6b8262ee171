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

- a deadline for the whole request body (``http_body_timeout_seconds``, 408 after it);
- 408/413 (and 429 where a route is rate limited) documented on every POST operation.

``bearer_admin(settings)`` (from ``shared.auth``) is the dependency guarding admin routes.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.asgi import HttpMiddleware
from shared.auth import bearer_admin, check_open_bind
from shared.config import Settings
from shared.limits import BodyTimeoutMiddleware, document_limits, server_limits
from shared.logging import get_logger

__all__ = ["bearer_admin", "component_lifespan", "create_service_app", "freeze_heap", "run_readiness", "serve"]

ReadinessCheck = Callable[[], Awaitable[bool] | bool]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


class Component(Protocol):
    """What a service runs in its app's lifespan (a worker, an event loop, a broker link)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

READINESS_TIMEOUT_SECONDS = 3.0
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

log = get_logger("stableseg.http")


def component_lifespan(build: Callable[[FastAPI], Component], *cleanup: Callable[[], Any]) -> Lifespan:
    """The lifespan of an app that runs one component: ``build(app)``, ``await start()``, serve, then on shutdown
    ``await stop()`` and every ``cleanup`` in order (awaited when it returns an awaitable)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        component = build(app)
        await component.start()
        try:
            yield
        finally:
            await component.stop()
            for close in cleanup:
                result = close()
                if inspect.isawaitable(result):
                    await result

    return lifespan


def create_service_app(
    name: str,
    settings: Settings,
    readiness: Mapping[str, ReadinessCheck],
    lifespan: Lifespan | None = None,
    *,
    max_body_bytes: int | None = None,
    readiness_timeout: float = READINESS_TIMEOUT_SECONDS,
    version: str = "0.1.0",
    write_tokens: Sequence[str] = (),
) -> FastAPI:
    """A FastAPI app with health, readiness, metrics, JSON errors, a body limit and request logging.

    ``max_body_bytes`` defaults to ``settings.http_max_body_bytes``; ``write_tokens`` names the Settings tokens that
    guard the app's write routes (``serve`` refuses an open bind without them)."""
    max_body_bytes = max_body_bytes or settings.http_max_body_bytes
    app = ServiceApp(title=f"stableseg {name}", version=version, lifespan=lifespan, max_body_size=max_body_bytes)
    app.state.service_name = name
    app.state.settings = settings
    app.state.readiness = dict(readiness)
    app.state.write_tokens = tuple(write_tokens)

    registry = CollectorRegistry()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    app.state.metrics_registry = registry
    Instrumentator(
        should_group_status_codes=False, excluded_handlers=["/metrics"], registry=registry
    ).instrument(app).expose(app, endpoint="/metrics", include_in_schema=False)

    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(BodyTimeoutMiddleware, seconds=settings.http_body_timeout_seconds)
    app.add_middleware(RequestLogMiddleware, service=name)
    document_limits(app)

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


class _JsonTooLarge(HttpMiddleware):
    """Rewrites Starlette's plain-text 413 from the body limiter into a JSON ``detail`` naming the limit."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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


class RequestLogMiddleware(HttpMiddleware):
    """One structlog line per HTTP request (probes and metrics scrapes at debug level)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        super().__init__(app)
        self.service = service

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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


def freeze_heap() -> int:
    """Collect, then move every object alive to the collector's permanent generation (``gc.freeze``): a full
    collection while serving then walks only what was allocated since, not the start-up heap (libraries, the
    model), which is what made the API's slowest requests wait tens of milliseconds. Returns the frozen count."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def serve(app: FastAPI, settings: Settings, port: int) -> None:
    """Run ``app`` in the foreground with uvicorn (one worker) on ``settings.bind_host:port`` until SIGTERM/SIGINT.

    Refuses to start (``OpenBindRefused``) on a non-loopback address without the app's ``write_tokens``. Requests
    are logged by this module's middleware, so uvicorn's access log is off; shutdown is graceful for 15 s; slow
    clients are bounded by ``http_header_timeout`` (see ``shared.limits``), ``http_keepalive_seconds`` and
    ``http_max_connections``.
    """
    check_open_bind(settings, app.state.write_tokens)
    uvicorn.run(app, host=settings.bind_host, port=port, log_config=None, access_log=False,
                timeout_graceful_shutdown=15, **server_limits(settings))
