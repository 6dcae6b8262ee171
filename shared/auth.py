"""Who may write: bearer-token guards for write routes, and the refusal to listen openly without them.

- ``bearer_admin(settings)``: admin routes (``STABLESEG_ADMIN_TOKEN``); 503 while no admin token is configured.
- ``bearer_ingest(settings)``: ``POST /v1/sales`` (``STABLESEG_INGEST_TOKEN``); open while no ingest token is set.
- ``check_open_bind(settings, tokens)``: a service on a non-loopback address must have the tokens guarding its
  write routes, unless ``STABLESEG_ALLOW_UNAUTHENTICATED`` says an open service is intended.

Both guards answer 401 (with ``WWW-Authenticate: Bearer``) when the header is missing or not a bearer token and
403 when the token is wrong; tokens are compared with ``secrets.compare_digest``. ``AUTH_RESPONSES`` documents
both in OpenAPI.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from starlette.exceptions import HTTPException

from shared.config import Settings

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing bearer token (or the Authorization header is not a bearer token)"},
    403: {"description": "wrong bearer token"},
}

_admin_scheme = HTTPBearer(
    auto_error=False, scheme_name="AdminToken", description="`Authorization: Bearer $STABLESEG_ADMIN_TOKEN`"
)
_ingest_scheme = HTTPBearer(
    auto_error=False, scheme_name="IngestToken", description="`Authorization: Bearer $STABLESEG_INGEST_TOKEN`"
)
Guard = Callable[..., Awaitable[None]]


class OpenBindRefused(RuntimeError):
    """A service would listen on a non-loopback address without the token that guards its write routes."""


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def _check_token(request: Request, credentials: HTTPAuthorizationCredentials | None, expected: str, what: str) -> None:
    if credentials is None:
        problem = "missing" if "authorization" not in request.headers else "not a bearer token"
        raise HTTPException(401, f"{what} required: Authorization header {problem}", {"WWW-Authenticate": "Bearer"})
    if not secrets.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(403, f"{what} is wrong")


def bearer_admin(settings: Settings) -> Guard:
    """Dependency for admin routes: ``Authorization: Bearer <STABLESEG_ADMIN_TOKEN>``; 503 when none is set."""

    async def require_admin(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_scheme)]
    ) -> None:
        expected = _secret(settings.admin_token)
        if not expected:
            raise HTTPException(503, "admin routes are disabled: no admin token is configured (STABLESEG_ADMIN_TOKEN)")
        _check_token(request, credentials, expected, "admin token")

    return require_admin


def bearer_ingest(settings: Settings) -> Guard:
    """Dependency for ``POST /v1/sales``: ``Authorization: Bearer <STABLESEG_INGEST_TOKEN>`` when one is set."""

    async def require_ingest(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_ingest_scheme)]
    ) -> None:
        expected = _secret(settings.ingest_token)
        if expected:
            _check_token(request, credentials, expected, "ingest token")

    return require_ingest


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_open_bind(settings: Settings, tokens: Iterable[str]) -> None:
    """Raise :class:`OpenBindRefused` when ``settings.bind_host`` is not loopback, a token in ``tokens`` (Settings
    field names) is unset and ``allow_unauthenticated`` is false."""
    if is_loopback(settings.bind_host) or settings.allow_unauthenticated:
        return
    missing = [name for name in tokens if not _secret(getattr(settings, name))]
    if missing:
        names = ", ".join(f"STABLESEG_{name.upper()}" for name in missing)
        raise OpenBindRefused(
            f"refusing to listen on {settings.bind_host} without {names}: anyone reaching the port could write. "
            "Set the token (or its _FILE variant), bind to 127.0.0.1, or set STABLESEG_ALLOW_UNAUTHENTICATED=true "
            "if an open service is intended"
        )
