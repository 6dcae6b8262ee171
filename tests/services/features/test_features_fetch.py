"""Lean record decoding (``services/features/fetch.py``) against aiokafka's own, on a real broker: the same
offsets, values and timestamps from the beginning, from inside a batch and in small ``max_records`` steps; a
compressed fetch goes through aiokafka's decoder; other consumers keep ``ConsumerRecord``."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from services.features.fetch import lean_options
from services.features.processor import Record
from shared.bus import ensure_topics

HEADERS = [("ce_type", b"io.stableseg.sales.monthly.v1"), ("ce_source", b"test"), ("content-type", b"application/json")]


async def _produce(bootstrap: str, topic: str, batches: list[list[tuple[Any, ...]]], **options: Any) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=1024 * 1024, **options)
    await producer.start()
    try:
        for records in batches:
            batch = producer.create_batch()
            for key, value, timestamp, headers in records:
                assert batch.append(key=key, value=value, timestamp=timestamp, headers=headers) is not None
            await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


async def _read(bootstrap: str, topic: str, start: int, lean: bool, max_records: int = 1000) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                **(lean_options() if lean else {}))
    tp = TopicPartition(topic, 0)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        out: list[Any] = []
        while True:
            fetched = await consumer.getmany(tp, timeout_ms=1000, max_records=max_records)
            out.extend(fetched.get(tp, []))
            high = consumer.highwater(tp)
            if high is not None and await consumer.position(tp) >= high:
                return out
    finally:
        await consumer.stop()


def _triples(records: list[Any]) -> list[tuple[int, bytes | None, int]]:
    return [(r.offset, r.value, r.timestamp) for r in records]


def _batches() -> list[list[tuple[Any, ...]]]:
    big = [(f"s{i}".encode(), b'{"n":%d}' % i, 1_700_000_000_000 + 7 * i, [*HEADERS, ("ce_id", b"x%d" % i)])
           for i in range(300)]
    odd = [(None, None, 1_600_000_000_000, []), (b"", b"", 1_800_000_000_000, HEADERS),
           (b"k", b"v" * 300, 1_700_000_000_005, [("h", None)])]
    return [big[:5], odd, big]


def test_lean_records_equal_aiokafkas(kafka_bootstrap: str) -> None:
    topic = f"lean-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, {topic: 1})
    asyncio.run(_produce(kafka_bootstrap, topic, _batches()))
    for start in (0, 3, 6, 100):
        lean = asyncio.run(_read(kafka_bootstrap, topic, start, lean=True))
        plain = asyncio.run(_read(kafka_bootstrap, topic, start, lean=False))
        assert len(plain) == 308 - start and _triples(lean) == _triples(plain)
        assert all(type(r) is Record for r in lean) and all(type(r) is ConsumerRecord for r in plain)
    stepped = asyncio.run(_read(kafka_bootstrap, topic, 2, lean=True, max_records=3))
    assert _triples(stepped) == _triples(asyncio.run(_read(kafka_bootstrap, topic, 2, lean=False)))


def test_compressed_fetch_goes_through_aiokafka(kafka_bootstrap: str) -> None:
    topic = f"lean-gz-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, {topic: 1})
    asyncio.run(_produce(kafka_bootstrap, topic, _batches(), compression_type="gzip"))
    lean = asyncio.run(_read(kafka_bootstrap, topic, 4, lean=True))
    plain = asyncio.run(_read(kafka_bootstrap, topic, 4, lean=False))
    assert len(lean) == 304 and _triples(lean) == _triples(plain)
    assert all(type(r) is ConsumerRecord for r in lean)
