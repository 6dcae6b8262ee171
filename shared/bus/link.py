"""A service's connection to Kafka: a publisher, an optional group consumer, and a topic keeper.

Start-up never blocks the HTTP server: connecting is retried (tenacity) in the background until the broker answers,
in this order: every contract topic exists (created with its partition count), the publisher runs, the consumer
(if any) has joined its group. Afterwards the keeper checks the topics every ``check_interval`` seconds and
re-creates any the broker lost (the embedded broker keeps topics in memory only). ``ready`` is true only while
connected and no topic is missing. Consumers run with auto-commit off: each service commits once its effects are
durable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_exponential

from shared.bus.events import KafkaRecord
from shared.bus.producer import AsyncPublisher
from shared.bus.security import kafka_security
from shared.bus.topics import ensure_topics, missing_topics, topic_specs
from shared.config import Settings
from shared.logging import get_logger

log = get_logger("stableseg.bus.link")


class BrokerLink:
    """``await start()`` (connect in the background), ``getmany``, ``send``, ``await stop()``.

    ``consume`` names the topics of the group consumer (none: a producer-only link); ``client`` names the service
    in logs, task names and the consumer's client id.
    """

    def __init__(self, settings: Settings, client: str, *, consume: Sequence[str] = (), group_id: str | None = None,
                 check_interval: float = 10.0, publisher: AsyncPublisher | None = None) -> None:
        self.bootstrap = settings.kafka_bootstrap
        self.security = kafka_security(settings, "aiokafka")
        self.admin_security = kafka_security(settings, "kafka-python")
        self.specs = topic_specs(settings)
        self.client = client
        self.topics = list(consume)
        self.group_id = group_id
        self.check_interval = check_interval
        self.publisher = publisher or AsyncPublisher(self.bootstrap, **self.security)
        self.consumer: AIOKafkaConsumer | None = None
        self.connected = asyncio.Event()
        self.missing: list[str] = sorted(self.specs)
        self._keeper: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.connected.is_set() and not self.missing

    async def start(self) -> None:
        self._keeper = asyncio.create_task(self._keep(), name=f"{self.client}-kafka-keeper")

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

    async def getmany(self, timeout_ms: int = 1000, max_records: int | None = None) -> list[ConsumerRecord]:
        """The next consumed records (empty after ``timeout_ms``), partition by partition in offset order."""
        await self.connected.wait()
        assert self.consumer is not None, "a producer-only link has no consumer"
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [record for tp in sorted(fetched) for record in fetched[tp]]

    async def send(self, records: Sequence[KafkaRecord], within_s: float = 30.0) -> None:
        """Send and wait for acks=all, retrying transient failures for up to ``within_s`` seconds."""
        if not records:
            return
        await asyncio.wait_for(self.connected.wait(), within_s)
        retrying = AsyncRetrying(stop=stop_after_delay(within_s), wait=wait_exponential(0.2, max=3), reraise=True,
                                 retry=retry_if_exception_type(Exception))
        async for attempt in retrying:
            with attempt:
                await self.publisher.send_batch(records)

    async def _keep(self) -> None:
        retry_forever = AsyncRetrying(
            retry=retry_if_exception_type(Exception), wait=wait_exponential(0.2, max=5), reraise=True,
            before_sleep=lambda state: log.warning(
                "broker.waiting", client=self.client, bootstrap=self.bootstrap, attempt=state.attempt_number,
                error=repr(state.outcome.exception()) if state.outcome else None,
            ),
        )
        steps = [self._ensure_topics, self.publisher.start] + ([self._start_consumer] if self.topics else [])
        for step in steps:
            async for attempt in retry_forever:
                with attempt:
                    await step()
        self.connected.set()
        log.info("broker.connected", client=self.client, bootstrap=self.bootstrap, consumes=self.topics,
                 idempotent=self.publisher.is_idempotent)
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self._ensure_topics()
            except Exception as exc:
                self.missing = sorted(self.specs)
                log.warning("broker.topic_check_failed", client=self.client, bootstrap=self.bootstrap, error=repr(exc))

    async def _start_consumer(self) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics, bootstrap_servers=self.bootstrap, group_id=self.group_id,
            client_id=f"stableseg-{self.client}", enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=10_000, heartbeat_interval_ms=3_000, rebalance_timeout_ms=20_000, **self.security,
        )
        try:
            await consumer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise
        self.consumer = consumer

    async def _ensure_topics(self) -> None:
        once = stop_after_attempt(1)
        missing = await asyncio.to_thread(missing_topics.retry_with(stop=once), self.bootstrap, self.specs,
                                          self.admin_security)
        if missing:
            self.missing = missing
            log.warning("broker.topics_missing", client=self.client, topics=missing)
            await asyncio.to_thread(ensure_topics.retry_with(stop=once), self.bootstrap, self.specs,
                                    security=self.admin_security)
        self.missing = []
