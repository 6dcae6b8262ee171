"""The trainer's run loop: consume triggers, wait until due, take the lock, train, commit, repeat.

Two tasks share the event loop: ``_consume`` keeps reading ``training.requests`` / ``months.closed`` (also while a
training runs, so heartbeats continue and new triggers coalesce into the next run) and ``_schedule`` runs
trainings one at a time. Only one training runs at a time across replicas: the registry's training lease is
held (and renewed) for the whole training. A batch of triggers whose first trigger is older than a version's
snapshot (trained by any replica) is already served and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from services.trainer.announce import published_record, reconcile
from services.trainer.executor import FitExecutor
from services.trainer.link import KafkaLink
from services.trainer.metrics import TrainerMetrics
from services.trainer.publication import served_by_version
from services.trainer.snapshot import SnapshotSource, feature_store_settlement, feature_store_source
from services.trainer.training import Hook, Outcome, TrainingContext, train
from services.trainer.triggers import REQUEST_SETTLE_SECONDS, Batch, Triggers
from shared.bus import EventDecodeError, decode_event
from shared.bus.topics import MONTHS_CLOSED, TRAINING_REQUESTS
from shared.config import Settings
from shared.logging import get_logger
from shared.model.gates import Gates
from shared.model.params import ModelParams
from shared.storage import ArtifactStore, ModelVersionInfo, Registry
from shared.tasks import cancel_all

log = get_logger("stableseg.trainer")


class TrainerService:
    """``await start()`` / ``await stop()``; state for /readyz and /v1/status in ``status()``."""

    def __init__(
        self, settings: Settings, metrics: TrainerMetrics, *, source: SnapshotSource | None = None,
        executor: FitExecutor | None = None, hook: Hook | None = None, owner: str | None = None,
        request_settle: float = REQUEST_SETTLE_SECONDS, lock_ttl: float | None = None, lock_poll: float = 1.0,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.source = source
        self.executor = executor or FitExecutor(settings.log_format, settings.log_level)
        self._own_executor = executor is None
        self.hook = hook
        self.lock_ttl, self.lock_poll = lock_ttl or settings.trainer_lock_ttl_seconds, lock_poll
        topics = [TRAINING_REQUESTS] + ([MONTHS_CLOSED] if settings.retrain_on_month_close else [])
        self.link = KafkaLink(settings, topics)
        self.triggers = Triggers(settings.retrain_debounce_seconds, request_settle)
        self.registry: Registry | None = None
        self.training = False
        self.last_outcome: Outcome | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._announcer: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.link.start()
        self._tasks = [asyncio.create_task(self._main(), name="trainer-main")]

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        if self._own_executor:
            await self.executor.stop()
        await self.link.stop()
        if self.registry is not None:
            self.registry.close()

    async def _main(self) -> None:
        settings = self.settings
        if self._own_executor:
            self._tasks.append(asyncio.create_task(self._warm(), name="trainer-warm-worker"))
        async for attempt in _forever("database"):
            with attempt:
                self.registry = await asyncio.to_thread(Registry.open, settings.effective_database_url)
        context = TrainingContext(
            feature_set=settings.feature_set, params=ModelParams.from_settings(settings),
            gates=Gates.from_settings(settings), registry=self.registry,
            store=ArtifactStore(settings.effective_artifact_uri),
            source=self.source or feature_store_source(settings.redis_url, settings.redis_cluster,
                                                      settings.feature_store_slot_groups), executor=self.executor,
            announce=self._announce, hook=self.hook,
            settle=None if self.source is not None else feature_store_settlement(
                settings.redis_url, settings.redis_cluster, settings.feature_store_slot_groups),
            settle_deadline_seconds=settings.train_settle_deadline_seconds,
        )
        await self.link.connected.wait()
        if not await reconcile(self.registry, self.link.bootstrap, self.link.send_one, self.link.admin_security):
            self._retry_announcement()
        consume = asyncio.create_task(self._consume(), name="trainer-consume")
        self._tasks.append(consume)
        await self._schedule(context)

    async def _warm(self) -> None:
        """Start the worker (TensorFlow import) now rather than at the first training."""
        try:
            await self.executor.start()
        except Exception as exc:  # trainings will fail with the same cause; say it early
            log.error("trainer.worker_start_failed", error=repr(exc))

    # --- triggers --------------------------------------------------------------------------------------------
    async def _consume(self) -> None:
        while True:
            try:
                records = await self.link.getmany(timeout_ms=1000)
            except Exception as exc:  # broker gone: aiokafka reconnects by itself; don't spin
                log.warning("trainer.consume_error", error=repr(exc))
                await asyncio.sleep(1.0)
                continue
            for record in records:
                self._on_record(record.topic, record.partition, record.offset, record.value, record.headers, record.key)
            if records:
                self._wake.set()

    def _on_record(self, topic: str, partition: int, offset: int, value: Any, headers: Any, key: Any) -> None:
        self.triggers.seen(topic, partition, offset)
        try:
            data = decode_event(value, list(headers or []), key).data or {}
        except EventDecodeError as exc:
            self.metrics.triggers.labels("invalid").inc()
            log.warning("trainer.trigger_unreadable", topic=topic, partition=partition, offset=offset, error=str(exc))
            return
        if topic == TRAINING_REQUESTS:
            self.metrics.triggers.labels("request").inc()
            self.triggers.request(_text(data.get("reason")), _text(data.get("requested_by")))
            log.info("trainer.requested", reason=data.get("reason"), requested_by=data.get("requested_by"))
        elif topic == MONTHS_CLOSED:
            self.metrics.triggers.labels("month_closed").inc()
            self.triggers.month_closed(_text(data.get("month")))
            log.info("trainer.month_closed", month=data.get("month"), retailers=data.get("retailers"))

    # --- scheduling ------------------------------------------------------------------------------------------
    async def _schedule(self, context: TrainingContext) -> None:
        while True:
            wait = self.triggers.due_in()
            if wait is None or wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue
            try:
                await self._run_due(context)
            except Exception as exc:  # e.g. the database is down: keep the triggers' offsets uncommitted, retry
                log.error("trainer.schedule_error", error=repr(exc), retry_in=5.0)
                await asyncio.sleep(5.0)

    async def _run_due(self, context: TrainingContext) -> None:
        registry = context.registry
        waited = False
        while not await asyncio.to_thread(registry.locks.acquire_training_lock, self.owner, self.lock_ttl):
            if not waited:
                holder = await asyncio.to_thread(registry.locks.lock_holder, "training")
                log.info("trainer.waiting_for_lock", holder=holder)
                waited = True
            await asyncio.sleep(self.lock_poll)
        batch = self.triggers.take()
        renew = asyncio.create_task(self._renew_lock(registry), name="trainer-lock-renew")
        self.training = True
        self.metrics.in_progress.set(1)
        try:
            if batch is not None:
                self.last_outcome = await self._serve(context, batch)
        finally:
            renew.cancel()
            self.training = False
            self.metrics.in_progress.set(0)
            await asyncio.to_thread(registry.locks.release_training_lock, self.owner)
        if batch is not None:
            await self.link.commit(batch.offsets)

    async def _serve(self, context: TrainingContext, batch: Batch) -> Outcome:
        served_by = await asyncio.to_thread(served_by_version, context.registry, batch.since)
        if served_by is not None:
            log.info("trainer.skipped", reason="already served", version=served_by, since=batch.since.isoformat())
            self.metrics.observe_outcome("skipped")
            return Outcome("skipped", served_by, "already served by a training started after the triggers")
        started = time.perf_counter()
        log.info("training.started", owner=self.owner, **batch.tags())
        try:
            outcome = await train(context, {**batch.tags(), "owner": self.owner})
        except Exception as exc:
            log.error("training.failed", error=repr(exc), exc_info=exc)
            self.metrics.observe_outcome("failed", time.perf_counter() - started)
            return Outcome("failed", reason=f"{type(exc).__name__}: {exc}")
        self.metrics.observe_model(outcome.rows or 0, outcome.metrics, outcome.seconds)
        self.metrics.observe_outcome(outcome.status, outcome.seconds["total"])
        log.info("training.finished", status=outcome.status, version=outcome.version, seconds=outcome.seconds)
        return outcome

    async def _renew_lock(self, registry: Registry) -> None:
        while True:
            await asyncio.sleep(self.lock_ttl / 3)
            if not await asyncio.to_thread(registry.locks.acquire_training_lock, self.owner, self.lock_ttl):
                log.error("trainer.lock_lost", owner=self.owner)

    # --- announcements ---------------------------------------------------------------------------------------
    async def _announce(self, info: ModelVersionInfo) -> None:
        """Send ``models.published``; if the broker refuses, the version stays published and a background task
        announces it as soon as the broker is back (the assigner must hear of every current version)."""
        try:
            await self.link.send_one(published_record(info))
        except Exception as exc:
            log.error("trainer.announce_failed", version=info.version, error=repr(exc))
            self._retry_announcement()
            return
        log.info("trainer.announced", version=info.version)

    def _retry_announcement(self, every: float = 15.0) -> None:
        async def retry() -> None:
            while True:
                await asyncio.sleep(every)
                if self.registry and await reconcile(self.registry, self.link.bootstrap, self.link.send_one,
                                                     self.link.admin_security):
                    return

        if self._announcer is None or self._announcer.done():
            self._announcer = asyncio.create_task(retry(), name="trainer-reannounce")
            self._tasks.append(self._announcer)

    def status(self) -> dict[str, Any]:
        last = self.last_outcome
        return {
            "owner": self.owner,
            "training": self.training,
            "pending": self.triggers.pending,
            "due_in_seconds": self.triggers.due_in(),
            "last_outcome": None if last is None else {
                "status": last.status, "version": last.version, "reason": last.reason, "rows": last.rows,
                "data_as_of": last.data_as_of, "seconds": last.seconds,
            },
        }


def _forever(what: str) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception_type(Exception), wait=wait_exponential(0.5, max=10), reraise=True,
        before_sleep=lambda state: log.warning(
            f"{what}.waiting", attempt=state.attempt_number,
            error=repr(state.outcome.exception()) if state.outcome else None,
        ),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:200]
