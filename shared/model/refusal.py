"""The one error for data that cannot support segments: its message names the cause and the setting to change."""

from __future__ import annotations


class InsufficientDataError(ValueError):
    """The data cannot support segments (too few eligible retailers, no clusters, everything noise).

    ``cause`` says what was found, ``remedy`` which setting to change; ``str()`` is the one line to show.
    """

    def __init__(self, cause: str, remedy: str) -> None:
        self.cause = cause
        self.remedy = remedy
        super().__init__(f"{cause}; {remedy}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # crosses the trainer's process boundary intact
        return type(self), (self.cause, self.remedy)
