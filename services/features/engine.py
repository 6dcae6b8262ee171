"""What both features engines share (aiokafka ``consumer.py``, faust ``faust_engine.py``): positioning partitions
against the offsets Redis holds, lag, the consumer's timeouts, and the loop that starts a new consumer after an
error (tenacity backoff) or a ``restart()``.

Positioning: a partition is sought to the record Redis says was applied last; that record comes back once more and
its fingerprint proves the log is the one we applied (``verify`` holds the stored records not seen again yet). With
no stored offset, or one below the log's beginning, it starts at the beginning. An engine supplies the primitives
(``_beginnings``, ``_seek``, ``_highwater``, ``_session``) and keeps its own record flow.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from services.features.processor import Outcome, Processor
from shared.bus.link import GroupTimeouts
from shared.config import SettingsParams, settings_default
from shared.logging import get_logger


@dataclass(frozen=True)
class ConsumerTimings(SettingsParams, prefix="features_consumer_"):
    """The features engines' timeouts and backoff (``Settings.features_consumer_*``)."""

    poll_seconds: float
    fetch_grace_seconds: float
    commit_seconds: float
    idle_recompute_seconds: float
    retry_min_seconds: float
    retry_max_seconds: float
    stop_seconds: float
    restart_stop_seconds: float
    max_poll_interval_ms: int


log = get_logger("stableseg.features.engine")


class EngineBase(ABC):
    """``await run()`` until ``stop()``; ``restart()``; ``joined`` (a group member); ``lag`` (records behind the
    high watermarks of our partitions)."""

    engine: ClassVar[str]

    def __init__(self, bootstrap: str, topic: str, group_id: str, processor: Processor, *,
                 max_records: int | None = None, metrics: Any = None, security: dict[str, Any] | None = None,
                 timeouts: GroupTimeouts | None = None, timings: ConsumerTimings | None = None) -> None:
        self.bootstrap, self.topic, self.group_id = bootstrap, topic, group_id
        self.security = security or {}  # kafka_security(settings, <the engine's client>)
        self.processor = processor
        self.max_records = max_records or cast(int, settings_default("features_batch_records"))
        self.metrics = metrics
        self.timeouts = timeouts or GroupTimeouts()
        self.timings = timings or ConsumerTimings()
        self.next_offsets: dict[int, int] = {}
        self.verify: dict[int, tuple[int, str]] = {}  # partition -> stored (offset, fingerprint) not yet seen again
        self.assigned: set[int] = set()
        self.lag = 0
        self.joined = False
        self._stop = asyncio.Event()
        self._restart = False
        self._quiet_since = time.monotonic()  # the idle duties' clock (see ``_idle``)

    def stop(self) -> None:
        self._stop.set()
        self.processor.stopping = True

    def restart(self) -> None:
        """Start over with a new consumer (after the broker lost its topics: fresh metadata and group); not ready
        until the new one joined."""
        self._restart = True
        self.joined = False

    # --- what an engine supplies ------------------------------------------------------------------------------
    @abstractmethod
    async def _session(self) -> None:
        """One consumer from start to close; returns after ``stop()`` or ``restart()``, raises on a failure."""

    @abstractmethod
    async def _beginnings(self, partitions: set[int]) -> dict[int, int]:
        """Each partition's beginning offset."""

    @abstractmethod
    async def _seek(self, partition: int, offset: int) -> None:
        """Seek the partition and make ``offset`` its next offset (``next_offsets``)."""

    @abstractmethod
    def _highwater(self, partition: int) -> int | None:
        """The partition's high watermark from the fetch responses (``None``: not known)."""

    def _owned(self) -> set[int]:
        """The partitions whose lag counts."""
        return set(self.assigned)

    # --- the loop -----------------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Run sessions until stopped: a new one after a ``restart()``, or after an error once the backoff passed
        (never crash-loop); the backoff starts again after a session that ended without an error."""
        while not self._stop.is_set():
            retrying = AsyncRetrying(
                retry=retry_if_exception_type(Exception), stop=lambda _: self._stop.is_set(),
                wait=wait_exponential(self.timings.retry_min_seconds, max=self.timings.retry_max_seconds),
                before_sleep=self._failed, retry_error_callback=lambda _: None,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        await self._session()
            except asyncio.CancelledError:
                if not self._stop.is_set():
                    raise

    def _failed(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        retry_in = state.next_action.sleep if state.next_action else None
        log.warning("features.consumer_error", error=repr(error), retry_in=retry_in, engine=self.engine)

    async def _leave(self, stopping: Awaitable[Any]) -> None:
        """Wait for a consumer to stop, bounded: leaving the group needs the broker, which may be gone (Redis holds
        the offsets); an error stopping a broken consumer must not mask the original problem."""
        self.joined = False
        seconds = self.timings.stop_seconds if self._stop.is_set() else self.timings.restart_stop_seconds
        try:
            await asyncio.wait_for(stopping, seconds)
        except Exception as exc:
            log.debug("features.consumer_stop_error", error=repr(exc), engine=self.engine)

    async def _idle(self) -> None:
        """No records: lag, the months outbox, and once quiet for a while the retailers a crash left dirty."""
        self._update_lag()
        await self.processor.flush_outbox()
        if time.monotonic() - self._quiet_since > self.timings.idle_recompute_seconds:
            await self.processor.recompute_pending()
            self._quiet_since = time.monotonic()

    # --- positioning --------------------------------------------------------------------------------------------
    async def _reposition(self, partitions: set[int]) -> None:
        """Seek ``partitions`` (those assigned) to the offsets Redis holds (see the module docstring)."""
        partitions = partitions & self.assigned
        if not partitions:
            return
        await self.processor.load_epoch()
        stored = await self.processor.stored_offsets()
        begin = await self._beginnings(partitions)
        for partition in sorted(partitions):
            floor = begin[partition]
            self.processor.floors[partition] = floor
            offset, fp = stored.get(partition, (None, ""))
            self.verify.pop(partition, None)
            if offset is not None and offset >= floor:
                self.verify[partition] = (offset, fp)
            await self._seek(partition, floor if offset is None else max(offset, floor))
        log.info("features.partitions_positioned", positions={p: self.next_offsets[p] for p in sorted(partitions)},
                 engine=self.engine)

    async def _restart_partition(self, partition: int, high: int | None) -> None:
        """Not the log we applied: forget the partition's stored offset and read it from its beginning."""
        self.verify.pop(partition, None)
        stored = await self.processor.forget_log(partition)
        log.warning("features.log_reset", partition=partition, stored=stored, high_watermark=high, engine=self.engine)
        floor = (await self._beginnings({partition}))[partition]
        self.processor.floors[partition] = floor
        await self._seek(partition, floor)

    async def _apply_seeks(self, outcome: Outcome) -> set[int]:
        """Re-position what the processor asked for; returns those partitions (their fetched records are stale)."""
        moved = set(outcome.seeks)
        if outcome.reseek_all:
            moved |= self.assigned
            await self._reposition(set(self.assigned))
        for partition, offset in outcome.seeks.items():
            await self._seek(partition, self.processor.floors.get(partition, 0) if offset is None else offset)
        return moved

    # --- lag ----------------------------------------------------------------------------------------------------
    def _update_lag(self) -> None:
        """``lag`` and the metrics' gauge; each known high watermark goes to ``processor.highwaters``."""
        lag = 0
        for partition in self._owned():
            high = self._highwater(partition)
            if high is not None:
                lag += max(0, high - self.next_offsets.get(partition, high))
                self.processor.highwaters[partition] = high
        if self.metrics is not None:
            self.metrics.lag.set(lag)
        self.lag = lag

    def _observe(self, outcome: Outcome, seconds: float) -> None:
        """After a batch: lag, then the batch's metrics."""
        self._update_lag()
        if self.metrics is not None:
            self.metrics.observe(outcome, seconds, self.lag)
