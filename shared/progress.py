"""The one progress callback of long jobs (data generation, model fitting, feature rebuild, bulk load, demo stream)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]
"""Called as a job advances with ``(stage, done, total)``: the stage's name, the units done so far (cumulative,
never a delta) and the units in all (0 when not known in advance)."""


def _ignore(stage: str, done: int, total: int) -> None:
    """Progress nobody listens to."""


def or_silent(progress: Progress | None) -> Progress:
    """``progress``, or a callback that ignores every report."""
    return progress or _ignore
