"""Helpers shared by the test modules (no tests here; the fixtures live in ``conftest.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    check: Callable[[], Any],
    timeout: float = 60.0,
    what: str = "condition",
    *,
    interval: float = 0.1,
    tolerate: tuple[type[BaseException], ...] = (),
    on_timeout: Callable[[], str] | None = None,
) -> Any:
    """Poll ``check`` until it returns something truthy, and return that; an exception of a type in ``tolerate``
    (e.g. a service not listening yet) counts as "not yet". After ``timeout`` seconds: an AssertionError naming
    ``what``, followed by ``on_timeout()`` (e.g. a worker's logs) when given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except tolerate:
            value = None
        if value:
            return value
        time.sleep(interval)
    extra = f"\n{on_timeout()}" if on_timeout is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{extra}")
