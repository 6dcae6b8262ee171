"""The trainer's Kafka link: the trigger consumer, the ``models.published`` producer, and a topic keeper.

Start-up never blocks the HTTP server: everything is retried (tenacity) until the broker answers. The consumer
is a member of the ``stableseg-trainer`` group (one active consumer per trigger partition, so several replicas
share the work) with auto-commit off: offsets are committed by the service only after the training that serves
them ended, so a trainer killed mid-training is asked again after its restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_exponential

from shared.bus import AsyncPublisher, KafkaRecord, ensure_topics, missing_topics, topic_specs
from shared.config import Settings
from shared.logging import get_logger

log = get_logger("stableseg.trainer.link")
GROUP_ID = "stableseg-trainer"


class KafkaLink:
    """``await start()`` (connect in the background), ``getmany``, ``commit``, ``send``, ``await stop()``."""

    def __init__(self, settings: Settings, topics: Sequence[str], check_interval: float = 10.0) -> None:
        self.bootstrap = settings.kafka_bootstrap
        self.specs = topic_specs(settings)
        self.topics = list(topics)
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
        self._keeper = asyncio.create_task(self._keep(), name="trainer-kafka-keeper")

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

    async def getmany(self, timeout_ms: int = 1000) -> list[ConsumerRecord]:
        """The next records of the trigger topics (empty after ``timeout_ms``), in partition order."""
        await self.connected.wait()
        assert self.consumer is not None
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms)
        return [record for tp in sorted(fetched) for record in fetched[tp]]

    async def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit "processed up to and including ``offset``" per (topic, partition); failures are logged only."""
        if not offsets or self.consumer is None:
            return
        try:
            await self.consumer.commit({TopicPartition(t, p): o + 1 for (t, p), o in offsets.items()})
        except Exception as exc:  # e.g. the partition moved to another replica: it will see the records again
            log.warning("trainer.commit_failed", offsets={f"{t}/{p}": o for (t, p), o in offsets.items()},
                        error=repr(exc))  # fmt: skip

    async def send(self, record: KafkaRecord, within_s: float = 30.0) -> None:
        """Send and wait for acks=all, retrying transient failures for up to ``within_s`` seconds."""
        await self.connected.wait()
        retrying = AsyncRetrying(stop=stop_after_delay(within_s), wait=wait_exponential(0.2, max=3), reraise=True,
                                 retry=retry_if_exception_type(Exception))  # fmt: skip
        async for attempt in retrying:
            with attempt:
                await self.publisher.send_and_wait(record)

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
        log.info("broker.connected", bootstrap=self.bootstrap, topics=self.topics)
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self._ensure_topics()
            except Exception as exc:
                self.missing = sorted(self.specs)
                log.warning("broker.topic_check_failed", bootstrap=self.bootstrap, error=repr(exc))

    async def _start_consumer(self) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics, bootstrap_servers=self.bootstrap, group_id=GROUP_ID, client_id="stableseg-trainer",
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
