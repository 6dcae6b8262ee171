"""The ingest service's link to Kafka: an aiokafka publisher plus a keeper that makes sure the topics exist.

Start-up never blocks the HTTP server: the keeper retries (tenacity) until the broker answers, creates every
contract topic, then starts the publisher. Afterwards it checks the topics every ``check_interval`` seconds and
re-creates them if the broker lost them (the embedded broker keeps topics in memory only). ``ready`` is true
only while the publisher runs and no topic is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from shared.bus import AsyncPublisher, KafkaRecord, ensure_topics, missing_topics, topic_specs
from shared.config import Settings
from shared.logging import get_logger

log = get_logger("stableseg.ingest.broker")


class BrokerUnavailable(Exception):
    """The broker did not acknowledge the records (unreachable, timed out, or refused them)."""


class BrokerLink:
    """Owns the publisher and the topic keeper; ``await start()`` in the lifespan, ``await stop()`` at the end."""

    def __init__(self, settings: Settings, check_interval: float = 5.0) -> None:
        self.settings = settings
        self.bootstrap = settings.kafka_bootstrap
        self.specs = topic_specs(settings)
        self.check_interval = check_interval
        self.ack_timeout = settings.ingest_ack_timeout_seconds
        self.publisher = AsyncPublisher(self.bootstrap, request_timeout_ms=int(self.ack_timeout * 1000))
        self.publisher_started = False
        self.missing: list[str] = sorted(self.specs)
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.publisher_started and not self.missing

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep(), name="ingest-broker-keeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.publisher_started:
            self.publisher_started = False
            await self.publisher.stop()

    async def publish(self, records: Sequence[KafkaRecord]) -> None:
        """Send ``records`` and return once the broker acknowledged every one (acks=all)."""
        if not records:
            return
        if not self.publisher_started:
            raise BrokerUnavailable(f"not connected to the Kafka broker at {self.bootstrap}")
        # A batch may be re-sent after a transient refusal (e.g. just after a broker restart): records are
        # replace-on-key, so a record written twice still counts once.
        retrying = AsyncRetrying(
            stop=stop_after_attempt(3), wait=wait_exponential(0.2, max=1), reraise=True,
            retry=retry_if_not_exception_type(asyncio.CancelledError),
        )  # fmt: skip
        try:
            async with asyncio.timeout(self.ack_timeout):
                async for attempt in retrying:
                    with attempt:
                        await self.publisher.send_batch(records)
        except TimeoutError:
            raise BrokerUnavailable(f"the broker did not acknowledge within {self.ack_timeout:g} s") from None
        except Exception as exc:  # aiokafka raises KafkaError subclasses; any failure means "not acknowledged"
            raise BrokerUnavailable(f"the broker refused the records: {type(exc).__name__}: {exc}") from exc

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
        self.publisher_started = True
        log.info("broker.connected", bootstrap=self.bootstrap, idempotent=self.publisher.is_idempotent)
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self._ensure_topics()
            except Exception as exc:
                self.missing = sorted(self.specs)
                log.warning("broker.topic_check_failed", bootstrap=self.bootstrap, error=repr(exc))

    async def _ensure_topics(self) -> None:
        once = stop_after_attempt(1)
        missing = await asyncio.to_thread(missing_topics.retry_with(stop=once), self.bootstrap, self.specs)
        if missing:
            self.missing = missing
            log.warning("broker.topics_missing", topics=missing)
            await asyncio.to_thread(ensure_topics.retry_with(stop=once), self.bootstrap, self.specs)
        self.missing = []
