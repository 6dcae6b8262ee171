"""The ingest service's link to Kafka: a publisher whose every send is acknowledged, or refused in bounded time.

Connecting in the background (the HTTP server never waits), creating the contract topics and re-creating any a
restarted embedded broker lost are :class:`shared.bus.link.BrokerLink`'s; ``ready`` is true only while the
publisher runs and no topic is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from shared.bus import AsyncPublisher, KafkaRecord
from shared.bus.link import BrokerLink as SharedBrokerLink
from shared.bus.security import kafka_security
from shared.config import Settings


class BrokerUnavailable(Exception):
    """The broker did not acknowledge the records (unreachable, timed out, or refused them)."""


class BrokerLink(SharedBrokerLink):
    """A producer-only link; :meth:`publish` answers within the configured ack timeout or raises."""

    def __init__(self, settings: Settings, check_interval: float | None = None) -> None:
        self.ack_timeout = settings.ingest_ack_timeout_seconds
        publisher = AsyncPublisher(settings.kafka_bootstrap, request_timeout_ms=int(self.ack_timeout * 1000),
                                   **kafka_security(settings, "aiokafka"))
        super().__init__(settings, "ingest", check_interval=check_interval, publisher=publisher)

    async def publish(self, records: Sequence[KafkaRecord]) -> None:
        """Send ``records`` and return once the broker acknowledged every one (acks=all)."""
        if not records:
            return
        if not self.connected.is_set():
            raise BrokerUnavailable(f"not connected to the Kafka broker at {self.bootstrap}")
        # A batch may be re-sent after a transient refusal (e.g. just after a broker restart): records are
        # replace-on-key, so a record written twice still counts once.
        retrying = AsyncRetrying(
            stop=stop_after_attempt(3), wait=wait_exponential(0.2, max=1), reraise=True,
            retry=retry_if_not_exception_type(asyncio.CancelledError),
        )
        try:
            async with asyncio.timeout(self.ack_timeout):
                async for attempt in retrying:
                    with attempt:
                        await self.publisher.send_batch(records)
        except TimeoutError:
            raise BrokerUnavailable(f"the broker did not acknowledge within {self.ack_timeout:g} s") from None
        except Exception as exc:  # aiokafka raises KafkaError subclasses; any failure means "not acknowledged"
            raise BrokerUnavailable(f"the broker refused the records: {type(exc).__name__}: {exc}") from exc
