"""Sending many keyed records as whole Kafka record batches (aiokafka's C batch builder), acks=all.

kafka-python's per-record ``send`` builds each record in pure Python, which caps a bulk load far below what the
broker takes; appending to aiokafka's builder is much cheaper (``bench/bench_ingest.py``; figures in the README).
Each record goes to the partition the default (murmur2) partitioner gives its key, the partition every other
producer of the topic chooses, so per-key order holds across producers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

MAX_BATCH_BYTES = 512 * 1024


class BulkLoadError(RuntimeError):
    """The broker did not acknowledge every record (the message says how many and the first error)."""


class BatchSender:
    """Appends keyed records to one open batch per (topic, partition); full batches go to the broker.

    ``await flush()`` sends the open batches (one generation); ``await settle(keep)`` waits for every batch sent
    except the last ``keep`` generations and raises ``BulkLoadError`` if any failed (after collecting all).
    """

    def __init__(self, producer: AIOKafkaProducer, partitions: dict[str, list[int]]) -> None:
        self.producer = producer
        self.partitions = {topic: sorted(parts) for topic, parts in partitions.items()}
        self.acked = 0
        self._partitioner = DefaultPartitioner()
        self._partition_of: dict[tuple[str, bytes], int] = {}
        self._open: dict[tuple[str, int], Any] = {}
        self._full: list[tuple[str, int, Any]] = []
        self._generations: list[list[tuple[asyncio.Future, int]]] = []

    def add(self, topic: str, key: bytes, value: bytes, headers: list) -> None:
        part = self._partition_of.get((topic, key))
        if part is None:
            parts = self.partitions[topic]
            part = self._partition_of[(topic, key)] = self._partitioner(key, parts, parts)
        builder = self._open.get((topic, part))
        if builder is None:
            builder = self._open[(topic, part)] = self.producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
            self._full.append((topic, part, builder))
            builder = self._open[(topic, part)] = self.producer.create_batch()
            if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                raise BulkLoadError(f"a record of {len(value)} bytes does not fit in a batch ({topic}, key {key!r})")

    async def flush(self) -> None:
        batches = self._full + [(topic, part, b) for (topic, part), b in self._open.items()]
        self._full, self._open = [], {}
        generation: list[tuple[asyncio.Future, int]] = []
        self._generations.append(generation)
        for topic, part, builder in batches:
            future = await self.producer.send_batch(builder, topic, partition=part)
            generation.append((future, builder.record_count()))

    async def settle(self, keep: int = 0) -> None:
        cut = max(len(self._generations) - keep, 0)
        in_flight = [item for generation in self._generations[:cut] for item in generation]
        self._generations = self._generations[cut:]
        outcomes = await asyncio.gather(*(f for f, _ in in_flight), return_exceptions=True)
        failed = [(n, o) for (_, n), o in zip(in_flight, outcomes, strict=True) if isinstance(o, BaseException)]
        self.acked += sum(n for _, n in in_flight) - sum(n for n, _ in failed)
        if failed:
            await self.abandon()
            raise BulkLoadError(
                f"the broker failed {sum(n for n, _ in failed)} records in {len(failed)} batches; first error: "
                f"{failed[0][1]!r}. Re-run the load: records are replace-on-key, so nothing is double counted"
            )

    async def abandon(self) -> None:
        """Wait out every batch still in flight, ignoring outcomes (after a failure: no unobserved errors)."""
        pending = [f for generation in self._generations for f, _ in generation]
        self._generations, self._full, self._open = [], [], {}
        await asyncio.gather(*pending, return_exceptions=True)


def make_bulk_producer(bootstrap: str, request_timeout_ms: int = 30_000, security: dict[str, Any] | None = None
                       ) -> AIOKafkaProducer:
    """An aiokafka producer for bulk loads (acks=all; ``security``: ``kafka_security(settings, "aiokafka")``);
    start it inside the running event loop."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id="stableseg-bulk", acks="all", linger_ms=20,
        max_batch_size=MAX_BATCH_BYTES, request_timeout_ms=request_timeout_ms, **(security or {}),
    )
