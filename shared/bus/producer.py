"""Producers for contract events: a kafka-python one for scripts/CLI and an aiokafka one for services.

Both use acks=all. Idempotence is asked for and kept only when the broker grants a producer id: tansu
(v0.6.0-510f3e2) grants it to kafka-python but answers aiokafka's InitProducerId with UnknownError, so the
async publisher falls back to a plain acks=all producer with a logged warning.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import ClusterAuthorizationFailedError, UnknownError, UnsupportedVersionError
from aiokafka.structs import RecordMetadata
from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from shared.bus.events import KafkaRecord
from shared.logging import get_logger

log = get_logger(__name__)

# Throughput: wait up to 20 ms to fill 256 KiB batches (sales records are ~100 bytes).
_SYNC_DEFAULTS: dict[str, Any] = {"acks": "all", "linger_ms": 20, "batch_size": 256 * 1024, "retries": 5}
_ASYNC_DEFAULTS: dict[str, Any] = {"acks": "all", "linger_ms": 20, "max_batch_size": 256 * 1024}
# (client, bootstrap) pairs whose broker refused idempotence: later producers skip the failing attempt.
_REFUSED: set[tuple[str, str]] = set()
# How a broker says no to aiokafka's InitProducerId (tansu: UnknownError).
_IDEMPOTENCE_REFUSALS = (UnknownError, UnsupportedVersionError, ClusterAuthorizationFailedError)


def _producer_id_granted(producer: KafkaProducer, timeout: float) -> bool:
    """Wait until an idempotent kafka-python producer got its producer id from the broker."""
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if manager.has_producer_id():
            return True
        if manager.has_error():
            return False
        time.sleep(0.02)
    return False


def make_sync_producer(bootstrap: str, idempotent: bool = True, **overrides: Any) -> KafkaProducer:
    """A kafka-python producer (acks=all, batching tuned for throughput), idempotent when the broker allows it."""
    config = {**_SYNC_DEFAULTS, "bootstrap_servers": bootstrap, "client_id": "stableseg", **overrides}
    if idempotent and ("kafka-python", bootstrap) not in _REFUSED:
        producer = KafkaProducer(enable_idempotence=True, **config)
        if _producer_id_granted(producer, timeout=5.0):
            return producer
        producer.close(timeout=1)
        _REFUSED.add(("kafka-python", bootstrap))
        log.warning("producer.idempotence_unavailable", bootstrap=bootstrap, client="kafka-python")
    return KafkaProducer(enable_idempotence=False, **config)


def publish(producer: KafkaProducer, record: KafkaRecord) -> FutureRecordMetadata:
    """Send one record (asynchronously; ``.get()`` the result or ``producer.flush()`` to wait)."""
    return producer.send(record.topic, value=record.value, key=record.key, headers=record.headers)


class AsyncPublisher:
    """aiokafka producer for services: ``await start()``, ``send_and_wait``, ``send_batch``, ``await stop()``.

    Also an async context manager. ``idempotent`` is tried first and dropped (warning) if the broker refuses it.
    """

    def __init__(self, bootstrap: str, idempotent: bool = True, **overrides: Any) -> None:
        self.bootstrap = bootstrap
        self.idempotent = idempotent
        self.overrides = overrides
        self._producer: AIOKafkaProducer | None = None
        self._idempotent_active = False

    @property
    def is_idempotent(self) -> bool:
        """True when started with idempotence granted by the broker."""
        return self._producer is not None and self._idempotent_active

    async def start(self) -> None:
        config = {**_ASYNC_DEFAULTS, "bootstrap_servers": self.bootstrap, "client_id": "stableseg", **self.overrides}
        if self.idempotent and ("aiokafka", self.bootstrap) not in _REFUSED:
            producer = AIOKafkaProducer(enable_idempotence=True, **config)
            try:
                await producer.start()
                self._producer, self._idempotent_active = producer, True
                return
            except _IDEMPOTENCE_REFUSALS as exc:  # not connection errors: those propagate
                await producer.stop()
                _REFUSED.add(("aiokafka", self.bootstrap))
                log.warning(
                    "producer.idempotence_unavailable", bootstrap=self.bootstrap, client="aiokafka", error=str(exc)
                )
        producer = AIOKafkaProducer(enable_idempotence=False, **config)
        await producer.start()
        self._producer, self._idempotent_active = producer, False

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def __aenter__(self) -> AsyncPublisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("AsyncPublisher: call start() first")
        return self._producer

    async def send_and_wait(self, record: KafkaRecord) -> RecordMetadata:
        """Send one record and wait for the broker's acknowledgement."""
        return await self._require().send_and_wait(
            record.topic, value=record.value, key=record.key, headers=record.headers
        )

    async def send_batch(self, records: Iterable[KafkaRecord]) -> list[RecordMetadata]:
        """Send many records (batched by the client) and wait until all are acknowledged, in order.

        Every delivery future is awaited even when one fails (no "exception never retrieved"); the first
        failure is then raised."""
        producer = self._require()
        futures = [await producer.send(r.topic, value=r.value, key=r.key, headers=r.headers) for r in records]
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return list(outcomes)
