"""A service's connection to Kafka: a publisher, an optional group consumer, and a topic keeper.

Start-up never blocks the HTTP server: connecting is retried (tenacity) in the background until the broker answers,
in this order: every contract topic exists (created with its partition count), the publisher runs, the consumer
(if any) has joined its group. Afterwards the keeper checks the topics every ``check_interval`` seconds and
re-creates any the broker lost (the embedded broker keeps topics in memory only), every ``recheck_interval``
seconds while one is missing or the broker is away; ``on_topics_back`` is called once every topic is there again
after such a check. ``ready`` is true only while connected and no topic is missing. Consumers run with auto-commit
off: each service commits once its effects are durable. :class:`GroupTimeouts` are every group consumer's; the
backoff of connecting and of resending is ``Settings.kafka_connect_retry_*`` / ``kafka_send_retry_*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    stop_never,
    wait_exponential,
)

from shared.bus.events import KafkaRecord
from shared.bus.producer import AsyncPublisher
from shared.bus.security import kafka_security
from shared.bus.topics import ensure_topics, missing_topics, topic_specs
from shared.config import Settings, SettingsParams
from shared.logging import get_logger

log = get_logger("stableseg.bus.link")


@dataclass(frozen=True)
class GroupTimeouts(SettingsParams, prefix="kafka_"):
    """A group member's session, heartbeat and rebalance timeouts (``Settings.kafka_*_ms``)."""

    session_timeout_ms: int
    heartbeat_interval_ms: int
    rebalance_timeout_ms: int

    def aiokafka(self) -> dict[str, int]:
        """As ``AIOKafkaConsumer`` options."""
        return dataclasses.asdict(self)

    def faust(self) -> dict[str, float]:
        """As ``faust.App`` options (seconds)."""
        return {"broker_session_timeout": self.session_timeout_ms / 1000,
                "broker_heartbeat_interval": self.heartbeat_interval_ms / 1000,
                "broker_rebalance_timeout": self.rebalance_timeout_ms / 1000}


class BrokerLink:
    """``await start()`` (connect in the background), ``getmany``, ``send``, ``await stop()``.

    ``consume`` names the topics of the group consumer (none: a producer-only link); ``client`` names the service
    in logs, task names and the consumer's client id.
    """

    def __init__(self, settings: Settings, client: str, *, consume: Sequence[str] = (), group_id: str | None = None,
                 check_interval: float | None = None, publisher: AsyncPublisher | None = None,
                 recheck_interval: float | None = None, on_topics_back: Callable[[], None] | None = None) -> None:
        self.bootstrap = settings.kafka_bootstrap
        self.security = kafka_security(settings, "aiokafka")
        self.admin_security = kafka_security(settings, "kafka-python")
        self.specs = topic_specs(settings)
        self.client = client
        self.topics = list(consume)
        self.group_id = group_id
        self.check_interval = check_interval or settings.kafka_topic_check_seconds
        self.recheck_interval = recheck_interval or min(self.check_interval, settings.kafka_topic_retry_seconds)
        self.on_topics_back = on_topics_back
        self.timeouts = GroupTimeouts.from_settings(settings)
        self.connect_wait = wait_exponential(settings.kafka_connect_retry_min_seconds,
                                             max=settings.kafka_connect_retry_max_seconds)
        self.send_wait = wait_exponential(settings.kafka_send_retry_min_seconds,
                                          max=settings.kafka_send_retry_max_seconds)
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

    async def send(self, records: Sequence[KafkaRecord], within_s: float | None = 30.0, *,
                   abandon: Callable[[], bool] | None = None) -> None:
        """Send and wait for acks=all, retrying transient failures for up to ``within_s`` seconds (``None``: until
        acknowledged); after a failure, ``abandon()`` true ends the retries. The last failure is raised."""
        if not records:
            return
        await asyncio.wait_for(self.connected.wait(), within_s)
        give_up = stop_never if within_s is None else stop_after_delay(within_s)
        if abandon is not None:
            give_up = stop_any(give_up, lambda _: abandon())
        retrying = AsyncRetrying(
            stop=give_up, wait=self.send_wait, reraise=True, retry=retry_if_exception_type(Exception),
            before_sleep=lambda state: log.warning(
                "broker.send_retry", client=self.client, attempt=state.attempt_number,
                error=repr(state.outcome.exception()) if state.outcome else None,
            ),
        )
        async for attempt in retrying:
            with attempt:
                await self.publisher.send_batch(records)

    async def _keep(self) -> None:
        retry_forever = AsyncRetrying(
            retry=retry_if_exception_type(Exception), wait=self.connect_wait, reraise=True,
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
            await asyncio.sleep(self.recheck_interval if self.missing else self.check_interval)
            await self._check_topics()

    async def _check_topics(self) -> None:
        """One check of the keeper: missing topics re-created; ``on_topics_back`` once all are there again."""
        was_missing = bool(self.missing)
        try:
            lost = await self._ensure_topics()
        except Exception as exc:
            self.missing = sorted(self.specs)
            log.warning("broker.topic_check_failed", client=self.client, bootstrap=self.bootstrap, error=repr(exc))
            return
        if (lost or was_missing) and self.on_topics_back is not None:
            self.on_topics_back()

    async def _start_consumer(self) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics, bootstrap_servers=self.bootstrap, group_id=self.group_id,
            client_id=f"stableseg-{self.client}", enable_auto_commit=False, auto_offset_reset="earliest",
            **self.timeouts.aiokafka(), **self.security,
        )
        try:
            await consumer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise
        self.consumer = consumer

    async def _ensure_topics(self) -> list[str]:
        """Create the missing contract topics; returns the ones that were missing."""
        once = stop_after_attempt(1)
        missing = await asyncio.to_thread(missing_topics.retry_with(stop=once), self.bootstrap, self.specs,
                                          self.admin_security)
        if missing:
            self.missing = missing
            log.warning("broker.topics_missing", client=self.client, topics=missing)
            await asyncio.to_thread(ensure_topics.retry_with(stop=once), self.bootstrap, self.specs,
                                    security=self.admin_security)
        self.missing = []
        return missing
