"""The assigner's Kafka link: a consumer of ``models.published`` + ``features.updated``, a producer, a topic keeper.

Start-up never blocks the HTTP server: connecting is retried (tenacity) in the background. The consumer is a
member of the ``stableseg-assigner`` group with auto-commit off; the service commits a batch's offsets only after
its effects are durable and re-seeks a batch it could not apply, so nothing is skipped (at-least-once; every
effect is idempotent). The keeper re-creates topics a restarted embedded broker lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_exponential

from shared.bus import AsyncPublisher, KafkaRecord, ensure_topics, missing_topics, topic_specs
from shared.bus.topics import FEATURES_UPDATED, MODELS_PUBLISHED
from shared.config import Settings
from shared.logging import get_logger

log = get_logger("stableseg.assigner.link")
GROUP_ID = "stableseg-assigner"
TOPICS = (MODELS_PUBLISHED, FEATURES_UPDATED)


class KafkaLink:
    """``await start()``, ``getmany``, ``commit``, ``rewind``, ``send``, ``await stop()``."""

    def __init__(self, settings: Settings, group_id: str = GROUP_ID, check_interval: float = 10.0) -> None:
        self.bootstrap = settings.kafka_bootstrap
        self.specs = topic_specs(settings)
        self.group_id = group_id
        self.check_interval = check_interval
        self.publisher = AsyncPublisher(self.bootstrap)
        self.consumer: AIOKafkaConsumer | None = None
        self.connected = asyncio.Event()
        self.missing: list[str] = sorted(self.specs)
        self._keeper: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.connected.is_set() and not self.missing

    async def start(self) -> None:
        self._keeper = asyncio.create_task(self._keep(), name="assigner-kafka-keeper")

    async def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        self.connected.clear()
        for part in (self.consumer, self.publisher):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.stop()

    async def getmany(self, timeout_ms: int = 1000, max_records: int = 2000) -> list[ConsumerRecord]:
        """The next records (empty after ``timeout_ms``), partition by partition in offset order."""
        await self.connected.wait()
        assert self.consumer is not None
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [record for tp in sorted(fetched) for record in fetched[tp]]

    async def commit(self, records: Sequence[ConsumerRecord]) -> None:
        """Commit past the last of ``records`` per partition; a failure is logged (they come again, harmlessly)."""
        if not records or self.consumer is None:
            return
        offsets: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:
            log.warning("assigner.commit_failed", error=repr(exc))

    def rewind(self, records: Sequence[ConsumerRecord]) -> None:
        """Seek back to the first of ``records`` per partition, so an unapplied batch is fetched again."""
        if self.consumer is None:
            return
        first: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            first[tp] = min(first.get(tp, r.offset), r.offset)
        for tp, offset in first.items():
            with contextlib.suppress(Exception):  # partition revoked meanwhile: its new owner reads it
                self.consumer.seek(tp, offset)

    async def send(self, records: Sequence[KafkaRecord], within_s: float = 30.0) -> None:
        """Send and wait for acks=all, retrying transient failures for up to ``within_s`` seconds."""
        if not records:
            return
        await asyncio.wait_for(self.connected.wait(), within_s)
        retrying = AsyncRetrying(stop=stop_after_delay(within_s), wait=wait_exponential(0.2, max=3), reraise=True,
                                 retry=retry_if_exception_type(Exception))  # fmt: skip
        async for attempt in retrying:
            with attempt:
                await self.publisher.send_batch(records)

    async def _keep(self) -> None:
        retry_forever = AsyncRetrying(
            retry=retry_if_exception_type(Exception), wait=wait_exponential(0.2, max=5), reraise=True,
            before_sleep=lambda state: log.warning(
                "broker.waiting", bootstrap=self.bootstrap, attempt=state.attempt_number,
                error=repr(state.outcome.exception()) if state.outcome else None,
            ),
        )  # fmt: skip
        async for attempt in retry_forever:
            with attempt:
                await self._ensure_topics()
        async for attempt in retry_forever:
            with attempt:
                await self.publisher.start()
        async for attempt in retry_forever:
            with attempt:
                await self._start_consumer()
        self.connected.set()
        log.info("broker.connected", bootstrap=self.bootstrap, topics=TOPICS)
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self._ensure_topics()
            except Exception as exc:
                self.missing = sorted(self.specs)
                log.warning("broker.topic_check_failed", bootstrap=self.bootstrap, error=repr(exc))

    async def _start_consumer(self) -> None:
        consumer = AIOKafkaConsumer(
            *TOPICS, bootstrap_servers=self.bootstrap, group_id=self.group_id, client_id="stableseg-assigner",
            enable_auto_commit=False, auto_offset_reset="earliest", session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000, rebalance_timeout_ms=20_000,
        )  # fmt: skip
        try:
            await consumer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise
        self.consumer = consumer

    async def _ensure_topics(self) -> None:
        once = stop_after_attempt(1)
        missing = await asyncio.to_thread(missing_topics.retry_with(stop=once), self.bootstrap, self.specs)
        if missing:
            self.missing = missing
            log.warning("broker.topics_missing", topics=missing)
            await asyncio.to_thread(ensure_topics.retry_with(stop=once), self.bootstrap, self.specs)
        self.missing = []
