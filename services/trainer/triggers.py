"""What asks for a training, and when the next one is due: coalescing and debounce, as pure logic.

- A ``training.requests`` message makes a training due ``request_settle`` seconds after the FIRST pending
  request (requests arriving together are served by one training).
- A ``months.closed`` message makes it due ``debounce`` seconds after the LAST month close: a backfill of years
  of history closes many months in a row and causes one training once it settles.
- With both pending the later due time wins. Whatever arrives while a training runs becomes ONE next run.

:meth:`Triggers.take` hands the pending batch to the training (with the Kafka offsets it covers, committed after
the training) and starts a new empty one. ``since`` (wall clock) is when the batch's first trigger arrived: a
training whose snapshot was taken after that (on any replica) satisfies the whole batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.storage.models import utcnow

MAX_KEPT = 20  # reasons / months remembered per batch (for the version's tags)
REQUEST_SETTLE_SECONDS = 1.0  # a training request waits this long for others to join its run


@dataclass
class Batch:
    """The triggers one training serves."""

    since: datetime
    requests: list[dict[str, Any]] = field(default_factory=list)
    months: list[str] = field(default_factory=list)
    request_count: int = 0
    month_close_count: int = 0
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    request_due: float | None = None
    month_due: float | None = None

    @property
    def due(self) -> float:
        return max(t for t in (self.request_due, self.month_due) if t is not None)

    def tags(self) -> dict[str, Any]:
        """JSON summary for the model version's tags."""
        return {
            "requests": self.request_count,
            "month_closes": self.month_close_count,
            "reasons": self.requests[:MAX_KEPT],
            "months": sorted(set(self.months))[-MAX_KEPT:],
            "since": self.since.isoformat(),
        }


class Triggers:
    """The pending batch of triggers (not thread-safe: used from the service's event loop only)."""

    def __init__(
        self,
        debounce: float,
        request_settle: float = REQUEST_SETTLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        if debounce < 0 or request_settle < 0:
            raise ValueError(f"debounce/request_settle: must be >= 0, got {debounce}/{request_settle}")
        self.debounce = debounce
        self.request_settle = request_settle
        self.clock = clock
        self.wall = wall
        self._batch: Batch | None = None
        self._offsets: dict[tuple[str, int], int] = {}

    def _open(self) -> Batch:
        if self._batch is None:
            self._batch = Batch(since=self.wall(), offsets=self._offsets)
        return self._batch

    def seen(self, topic: str, partition: int, offset: int) -> None:
        """Record a consumed offset (also for records that are not triggers, e.g. unreadable ones)."""
        key = (topic, partition)
        self._offsets[key] = max(offset, self._offsets.get(key, -1))

    def request(self, reason: str | None, requested_by: str | None) -> None:
        batch = self._open()
        if batch.request_due is None:
            batch.request_due = self.clock() + self.request_settle
        batch.request_count += 1
        if len(batch.requests) < MAX_KEPT:
            batch.requests.append({"reason": reason, "requested_by": requested_by})

    def month_closed(self, month: str | None) -> None:
        batch = self._open()
        batch.month_due = self.clock() + self.debounce
        batch.month_close_count += 1
        if month:
            batch.months.append(month)
            del batch.months[: -MAX_KEPT * 4]

    @property
    def pending(self) -> bool:
        return self._batch is not None

    def due_in(self) -> float | None:
        """Seconds until the pending batch is due (<= 0: due now); None when nothing is pending."""
        return None if self._batch is None else self._batch.due - self.clock()

    def take(self) -> Batch | None:
        """The pending batch (due or not), leaving an empty one behind; None when nothing is pending."""
        batch, self._batch = self._batch, None
        if batch is not None:
            self._offsets = {}
        return batch
