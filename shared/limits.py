"""Limits that keep one client from tying a service up: slow headers and bodies, too many connections, too many
requests. Body *size* limits live in ``shared.http`` (FastAPI's ``max_body_size``).

- ``server_limits(settings)``: uvicorn options: a header deadline per request (``http_header_timeout_seconds``,
  the connection is closed after it), the keep-alive idle timeout and ``limit_concurrency`` (503 beyond it);
- ``BodyTimeoutMiddleware``: the whole request body must arrive within ``http_body_timeout_seconds`` (408);
- ``RateLimit``: a per-client moving-window limit (``limits`` library), 429 with ``Retry-After``;
- ``document_limits(app)``: 408/413 on every POST operation (429 where a route is rate limited) in OpenAPI.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from fastapi import FastAPI, Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared.asgi import HttpMiddleware
from shared.config import Settings

RATE_LIMITED = "x-stableseg-rate-limited"  # OpenAPI extension marking a rate-limited operation
_LIMIT_RESPONSES: dict[str, dict[str, Any]] = {
    "408": {"description": "the request body did not arrive within http_body_timeout_seconds"},
    "413": {"description": "request body too large; `detail` names the limit"},
}
_RATE_RESPONSE = {"description": "too many requests from this client; retry after `Retry-After` seconds"}


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus a deadline for each request's headers (uvicorn itself has none, so a
    client trickling headers would hold its connection for ever)."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def server_limits(settings: Settings) -> dict[str, Any]:
    """uvicorn.run options bounding slow or numerous clients."""
    protocol = type("Protocol", (HeaderTimeoutProtocol,), {"header_timeout": settings.http_header_timeout_seconds})
    return {"http": protocol, "timeout_keep_alive": math.ceil(settings.http_keepalive_seconds),
            "limit_concurrency": settings.http_max_connections}


class BodyTimeoutMiddleware(HttpMiddleware):
    """408 when a request's body has not fully arrived ``seconds`` after the request started."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        super().__init__(app)
        self.seconds = seconds

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline = time.monotonic() + self.seconds
        done = False

        async def receive_by_deadline() -> Message:
            nonlocal done
            if done:  # after the body, receive() waits for a disconnect: no deadline then
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise HTTPException(408, f"request body not received within {self.seconds:g} s") from None
            done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, receive_by_deadline, send)


class RateLimit:
    """A per-client limit such as ``50/second`` (``limits`` notation), counted in a moving window in memory (one
    process: each replica counts its own clients). Call with the request; raises 429 with ``Retry-After``."""

    def __init__(self, spec: str) -> None:
        self.item: RateLimitItem | None = parse(spec) if spec.strip() else None
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, request: Request) -> None:
        if self.item is None:
            return
        client = request.client.host if request.client else "unknown"
        if self.limiter.hit(self.item, client):
            return
        reset = self.limiter.get_window_stats(self.item, client).reset_time
        retry_after = max(1, math.ceil(reset - time.time()))
        raise HTTPException(429, f"rate limit of {self.item} per client exceeded; retry in {retry_after} s",
                            {"Retry-After": str(retry_after)})


def document_limits(app: FastAPI) -> None:
    """Make ``app.openapi()`` list 408 and 413 on every POST, and 429 on operations marked ``RATE_LIMITED``."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            for path in schema.get("paths", {}).values():
                operation = path.get("post")
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                for code, response in _LIMIT_RESPONSES.items():
                    responses.setdefault(code, response)
                if operation.pop(RATE_LIMITED, False):
                    responses.setdefault("429", _RATE_RESPONSE)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
