"""The demo's Kafka side: request trainings, read a topic from the beginning, measure a consumer group's lag."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from services.demo.options import DemoError
from shared.bus import EventDecodeError, decode_event, make_sync_producer, publish, training_request

REQUESTER = "stableseg-demo"


@dataclass(frozen=True)
class TopicEvent:
    """One record of a topic, decoded."""

    partition: int
    offset: int
    key: str
    data: dict[str, Any]


def request_training(bootstrap: str, reason: str) -> int:
    """Send a ``training.requests`` event (what ``stableseg retrain`` does); returns its offset."""
    producer = make_sync_producer(bootstrap)
    try:
        record = training_request(reason, REQUESTER, source="stableseg/demo")
        return int(publish(producer, record).get(timeout=15).offset)
    finally:
        producer.close(timeout=5)


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def _consumer(bootstrap: str) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", client_id=REQUESTER, fetch_max_wait_ms=100)


def _fetch_watermarks(consumer: KafkaConsumer, partitions: list[TopicPartition], timeout: float) -> None:
    """Poll until every partition's high watermark is known from a fetch response."""
    deadline = time.monotonic() + timeout
    while any(consumer.highwater(tp) is None for tp in partitions):
        if time.monotonic() > deadline:
            raise DemoError(f"no fetch answer for {sorted(tp.partition for tp in partitions)} within {timeout:.0f} s")
        consumer.poll(timeout_ms=200, max_records=1, update_offsets=False)


def end_offsets(bootstrap: str, topic: str, timeout: float = 30.0) -> dict[int, int]:
    """Partition -> offset of the next record, from a fetch response's high watermark. (The embedded broker's
    ListOffsets answer can lag behind after multi-record batches, so ``KafkaConsumer.end_offsets`` is not used
    as the truth; it only gives the starting point of the fetch.)"""
    consumer = _consumer(bootstrap)
    try:
        partitions = _partitions(consumer, topic)
        listed = consumer.end_offsets(partitions)
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, listed[tp])
        _fetch_watermarks(consumer, partitions, timeout)
        return {tp.partition: max(int(consumer.highwater(tp)), int(listed[tp])) for tp in partitions}
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[TopicEvent]:
    """Every record of ``topic`` from the beginning up to the high watermarks (known from the fetches),
    decoded; records that are not readable events are skipped."""
    consumer = _consumer(bootstrap)
    try:
        partitions = _partitions(consumer, topic)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        events: list[TopicEvent] = []
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise DemoError(f"{topic}: could not read to the end within {timeout:.0f} s")
            for records in consumer.poll(timeout_ms=500, max_records=5000).values():
                events.extend(_decoded(message) for message in records)
            marks = {tp: consumer.highwater(tp) for tp in partitions}
            if all(mark is not None and consumer.position(tp) >= mark for tp, mark in marks.items()):
                return [event for event in events if event.data]
    finally:
        consumer.close()


def _decoded(message: Any) -> TopicEvent:
    try:
        data = decode_event(message.value, message.headers, message.key).data or {}
    except EventDecodeError:
        data = {}
    key = message.key.decode(errors="replace") if message.key else ""
    return TopicEvent(message.partition, message.offset, key, data)


def group_lag(bootstrap: str, group: str, topics: tuple[str, ...]) -> int:
    """Records of ``topics`` the consumer ``group`` has not committed yet (the end offsets minus its offsets)."""
    ends = {TopicPartition(topic, p): end for topic in topics for p, end in end_offsets(bootstrap, topic).items()}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=REQUESTER, request_timeout_ms=5000)
    try:
        committed = admin.list_group_offsets({group: sorted(ends)}).get(group, {})
    finally:
        admin.close()
    lag = 0
    for tp, end in ends.items():
        meta = committed.get(tp)
        done = meta.offset if meta is not None and meta.offset >= 0 else 0
        lag += max(0, end - done)
    return lag
