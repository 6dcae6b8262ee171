"""Closing months: a month goes out on ``months.closed`` only when it is complete, not when a later record arrives.

``services/features/months.py`` queues a month once the store's latest month passes it (the outbox).
:class:`MonthGate` lets the head of that queue out only when all of these hold:

1. the store is settled (:mod:`shared.features.settlement`: every partition caught up with its high watermark, no
   retailer waiting for a recompute), continuously for ``quiet_seconds``;
2. the month's retailers reached ``min_share`` of the month before's (a backfill streamed shop by shop has every
   month half-filled; a monthly stream has the month complete), or ``grace_seconds`` passed since this worker first
   saw the month queued (a month that really lost retailers still closes).

Months leave in order; the event carries the month's retailer count at closing time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.config import SettingsParams
from shared.feature_store.layout import period_index
from shared.feature_store.writer import StoreWriter
from shared.features.settlement import previous_month, store_progress


@dataclass(frozen=True)
class MonthClosePolicy(SettingsParams, prefix="month_close_"):
    """``Settings.month_close_*``."""

    min_share: float
    grace_seconds: float
    quiet_seconds: float


@dataclass
class MonthGate:
    """Decides which queued months may be published now (state: when the store settled, when a month was seen)."""

    writer: StoreWriter
    policy: MonthClosePolicy = field(default_factory=MonthClosePolicy)
    clock: Callable[[], float] = time.monotonic
    settled_since: float | None = None
    first_seen: dict[str, float] = field(default_factory=dict)

    def ready(self, epoch: int, queued: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
        """(the leading queued months that close now, with fresh retailer counts; why the next one waits)."""
        now = self.clock()
        for item in queued:
            self.first_seen.setdefault(item["month"], now)
        progress = store_progress(self.writer, epoch)
        if not progress.settled:
            self.settled_since = None
            return [], f"store not settled: {progress.reason()}"
        self.settled_since = self.settled_since if self.settled_since is not None else now
        if now - self.settled_since < self.policy.quiet_seconds:
            return [], f"store settled for less than {self.policy.quiet_seconds:g} s"
        months = [item["month"] for item in queued]
        wanted = [period_index(m) for m in months + [previous_month(m) for m in months]]
        counts = [int(c) for c in self.writer.month_retailers(epoch, wanted)]
        current, before = counts[: len(months)], counts[len(months):]
        ready = []
        for month, retailers, previous in zip(months, current, before, strict=True):
            complete = previous == 0 or retailers >= self.policy.min_share * previous
            if not complete and now - self.first_seen[month] < self.policy.grace_seconds:
                return ready, (f"{month} has {retailers} retailers, under {self.policy.min_share:g} x the "
                               f"{previous} of {previous_month(month)}")
            ready.append({"month": month, "retailers": retailers})
            self.first_seen.pop(month, None)
        return ready, None
