"""The demo's Kafka side: request trainings, read a topic from the beginning, measure a consumer group's lag."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from services.demo.options import DemoError
from shared.bus import EventDecodeError, decode_event, encode_event, make_sync_producer, publish
from shared.bus.topics import TRAINING_REQUESTS

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
        record = encode_event(TRAINING_REQUESTS, {"reason": reason, "requested_by": REQUESTER}, key="",
                              source="stableseg/demo")  # fmt: skip
        return int(publish(producer, record).get(timeout=15).offset)
    finally:
        producer.close(timeout=5)


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> offset of the next record (the high watermark)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = _partitions(consumer, topic)
        return {tp.partition: int(end) for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def read_topic(
    bootstrap: str, topic: str, upto: dict[int, int] | None = None, timeout: float = 60.0
) -> list[TopicEvent]:
    """Every record of ``topic`` from the beginning to the end offsets of now (or ``upto``), decoded; records
    that are not readable events are skipped (their count is not needed by the demo)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", client_id=REQUESTER)  # fmt: skip
    try:
        partitions = _partitions(consumer, topic)
        ends = upto if upto is not None else {tp.partition: e for tp, e in consumer.end_offsets(partitions).items()}
        wanted = [tp for tp in partitions if ends.get(tp.partition, 0) > 0]
        if not wanted:
            return []
        consumer.assign(wanted)
        consumer.seek_to_beginning(*wanted)
        events: list[TopicEvent] = []
        remaining = set(wanted)
        deadline = time.monotonic() + timeout
        while remaining:
            if time.monotonic() > deadline:
                raise DemoError(f"{topic}: could not read to the end offsets {ends} within {timeout:.0f} s")
            for tp, records in consumer.poll(timeout_ms=1000, max_records=5000).items():
                events.extend(_decoded(m) for m in records if m.offset < ends[tp.partition])
            for tp in list(remaining):
                if consumer.position(tp) >= ends[tp.partition]:
                    remaining.discard(tp)
                    consumer.pause(tp)
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
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=REQUESTER, request_timeout_ms=5000)
    try:
        committed = admin.list_consumer_group_offsets(group)
    finally:
        admin.close()
    lag = 0
    for topic in topics:
        for partition, end in end_offsets(bootstrap, topic).items():
            meta = committed.get(TopicPartition(topic, partition))
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag += max(0, end - done)
    return lag
