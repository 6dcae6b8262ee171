"""The bus: CloudEvents encoding/decoding, contract topics on the real broker, producers (sync and async)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import orjson
import pytest
import redis
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from shared.bus import (
    AsyncPublisher,
    EventDecodeError,
    decode_event,
    encode_event,
    ensure_topics,
    make_sync_producer,
    missing_topics,
    partition_mismatches,
    publish,
    topic_specs,
    training_request,
)
from shared.bus import topics as t
from shared.config import Settings
from shared.stack import free_port

pytestmark = pytest.mark.xdist_group("stack")

SALE = {"shop_id": "s-1", "product_id": 7, "year": 2023, "month": 4, "sales_qty": 12.5}
CE_HEADERS = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"}


# --- encoding -------------------------------------------------------------------------------------
def test_encode_binary_mode_headers_and_roundtrip() -> None:
    when = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
    record = encode_event(t.SALES_MONTHLY, SALE, key="s-1", source="/ingest", event_id="e-1", time=when)
    headers = dict(record.headers)
    assert set(headers) == CE_HEADERS
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"io.stableseg.sales.monthly.v1"
    assert headers["content-type"] == b"application/json"
    assert headers["ce_time"] == b"2024-01-31T12:00:00Z"
    assert (record.topic, record.key) == ("sales.monthly", b"s-1")
    event = decode_event(record.value, record.headers, record.key)
    assert (event.id, event.type, event.source, event.time) == ("e-1", "io.stableseg.sales.monthly.v1", "/ingest", when)
    assert (event.key, event.data) == ("s-1", SALE)


def test_every_contract_topic_has_a_default_type_and_unique_ids() -> None:
    types = {encode_event(topic, {}, "", "/test").headers[0] for topic in t.ALL_TOPICS}
    assert len(types) == len(t.ALL_TOPICS)
    ids = {dict(encode_event(t.MONTHS_CLOSED, {}, "", "/test").headers)["ce_id"] for _ in range(50)}
    assert len(ids) == 50


def test_encode_explicit_type_and_bad_input() -> None:
    record = encode_event("custom.topic", {"a": 1}, "k", "/x", event_type="io.example.custom")
    assert dict(record.headers)["ce_type"] == b"io.example.custom"
    with pytest.raises(ValueError, match=r"event_type: required for topic 'custom\.topic'"):
        encode_event("custom.topic", {"a": 1}, "k", "/x")
    with pytest.raises(TypeError, match="key: expected str"):
        encode_event(t.SALES_MONTHLY, SALE, key=5, source="/x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="source"):
        encode_event(t.SALES_MONTHLY, SALE, key="k", source="")


def test_training_request_is_one_event_for_every_requester() -> None:
    record = training_request("new promo calendar", "ana@hq", source="stableseg/cli")
    assert (record.topic, record.key) == ("training.requests", b"")
    event = decode_event(record.value, record.headers, record.key)
    assert (event.type, event.source) == ("io.stableseg.training.requests.v1", "stableseg/cli")
    assert event.data == {"reason": "new promo calendar", "requested_by": "ana@hq"}


def test_decode_plain_json_from_any_producer() -> None:
    event = decode_event(b'{"shop_id": "s-9", "sales_qty": 3}', None, b"s-9")
    assert (event.type, event.id, event.source, event.time) == (None, None, None, None)
    assert (event.key, event.data) == ("s-9", {"shop_id": "s-9", "sales_qty": 3})
    assert decode_event(b'{"a": 1}', [("trace", b"x")]).key == ""
    assert decode_event(b"", None).data is None  # a tombstone


GOOD = encode_event(t.SALES_MONTHLY, SALE, "s-1", "/ingest")


def _with(header: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in GOOD.headers if k != header] + [(header, value)]


@pytest.mark.parametrize(
    ("value", "headers", "key", "message"),
    [
        (b"{not json", None, None, "value: not valid UTF-8 JSON"),
        (b"\xff\xfe", None, None, "value: not valid UTF-8 JSON"),
        (b"[1, 2]", None, None, "value: expected a JSON object, got list"),
        (b'"text"', None, None, "value: expected a JSON object, got str"),
        (b"{not json", GOOD.headers, None, "value: not valid UTF-8 JSON"),
        (GOOD.value, _with("ce_time", b"yesterday"), None, "headers: invalid CloudEvents attributes"),
        (GOOD.value, _with("ce_id", b""), None, "headers: .*id"),
        (GOOD.value, _with("ce_specversion", b"9.9"), None, "headers: .*specversion"),
        (GOOD.value, GOOD.headers, b"\xff", "key: not valid UTF-8"),
    ],
    ids=["json", "utf8", "list", "string", "ce-json", "ce-time", "ce-id", "ce-specversion", "key"],
)
def test_decode_garbage_raises_clear_error(
    value: bytes, headers: list[tuple[str, bytes]] | None, key: bytes | None, message: str
) -> None:
    with pytest.raises(EventDecodeError, match=message):
        decode_event(value, headers, key)


# --- topics ---------------------------------------------------------------------------------------
def test_topic_specs_follow_settings() -> None:
    specs = topic_specs(Settings(sales_partitions=3, segment_partitions=2))
    assert set(specs) == set(t.ALL_TOPICS) and len(specs) == 8
    assert specs[t.SALES_MONTHLY] == specs[t.SALES_REJECTED] == specs[t.FEATURES_UPDATED] == 3
    assert specs[t.SEGMENTS_CHANGES] == 2
    assert {specs[n] for n in (t.MONTHS_CLOSED, t.TRAINING_REQUESTS, t.MODELS_PUBLISHED, t.SEGMENTS_LINEAGE)} == {1}


def test_ensure_topics_idempotent_with_partition_counts(fresh_kafka_bootstrap: str) -> None:
    specs = topic_specs(Settings(sales_partitions=3, segment_partitions=2))
    assert missing_topics(fresh_kafka_bootstrap, specs) == sorted(specs)
    assert sorted(ensure_topics(fresh_kafka_bootstrap, specs)) == sorted(specs)
    assert ensure_topics(fresh_kafka_bootstrap, specs) == []
    assert missing_topics(fresh_kafka_bootstrap, specs) == []
    admin = KafkaAdminClient(bootstrap_servers=fresh_kafka_bootstrap)
    try:
        described = {d["name"]: len(d["partitions"]) for d in admin.describe_topics(sorted(specs))}
    finally:
        admin.close()
    assert described == specs


def test_tansu_auto_creates_unknown_topics_so_ensure_topics_must_run_first(fresh_kafka_bootstrap: str) -> None:
    """tansu v0.6.0-510f3e2 auto-creates a topic on first produce (4 partitions), ignoring the client's
    allow_auto_create_topics=False: ensure_topics must run before any producer; mismatches are detectable."""
    producer = make_sync_producer(fresh_kafka_bootstrap, allow_auto_create_topics=False)
    try:
        publish(producer, encode_event("x.auto", {}, "k", "/test", event_type="io.test")).get(timeout=10)
    finally:
        producer.close()
    assert ensure_topics(fresh_kafka_bootstrap, {"x.auto": 1, "x.new": 2}) == ["x.new"]
    assert partition_mismatches(fresh_kafka_bootstrap, {"x.auto": 1, "x.new": 2, "x.absent": 1}) == {"x.auto": (4, 1)}


def test_ensure_topics_rejects_bad_partition_count(kafka_bootstrap: str) -> None:
    with pytest.raises(ValueError, match=r"topic 'x\.bad': partitions must be an integer >= 1, got 0"):
        ensure_topics(kafka_bootstrap, {"x.bad": 0})


# --- producers against the real broker --------------------------------------------------------------
def test_aiokafka_round_trip_with_cloudevents_and_redis_ping(
    kafka_bootstrap: str, topics: dict[str, int], redis_url: str
) -> None:
    assert redis.Redis.from_url(redis_url).ping() is True
    run = uuid.uuid4().hex[:8]
    records = [
        encode_event(
            t.SALES_MONTHLY, {**SALE, "shop_id": f"{run}-{i % 5}", "month": 1 + i % 12}, f"{run}-{i % 5}", "/test"
        )
        for i in range(40)
    ]

    async def scenario() -> list:
        async with AsyncPublisher(kafka_bootstrap) as publisher:
            metas = await publisher.send_batch(records)
        consumer = AIOKafkaConsumer(
            t.SALES_MONTHLY, bootstrap_servers=kafka_bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            received = []
            for _ in range(50):
                batch = await consumer.getmany(timeout_ms=500)
                received += [m for msgs in batch.values() for m in msgs if m.key.decode().startswith(run)]
                if len(received) >= len(records):
                    break
        finally:
            await consumer.stop()
        return [metas, received]

    metas, received = asyncio.run(scenario())
    assert len(received) == len(records)
    sent = {dict(r.headers)["ce_id"].decode(): r for r in records}
    partitions_by_key: dict[str, set[int]] = {}
    for message in received:
        event = decode_event(message.value, list(message.headers), message.key)
        assert event.type == "io.stableseg.sales.monthly.v1"
        assert event.data == orjson.loads(sent[event.id].value)
        partitions_by_key.setdefault(event.key, set()).add(message.partition)
    assert all(len(p) == 1 for p in partitions_by_key.values())  # one key -> one partition (ordering per shop)
    assert {m.partition for m in metas} <= set(range(topics[t.SALES_MONTHLY]))


def test_async_publisher_on_tansu_falls_back_from_idempotence(kafka_bootstrap: str, topics: dict[str, int]) -> None:
    """tansu v0.6.0-510f3e2 answers aiokafka's InitProducerId with UnknownError: the publisher must still work."""

    async def scenario() -> tuple[bool, int]:
        async with AsyncPublisher(kafka_bootstrap) as publisher:
            meta = await publisher.send_and_wait(encode_event(t.TRAINING_REQUESTS, {"reason": "test"}, "", "/test"))
            return publisher.is_idempotent, meta.offset

    idempotent, offset = asyncio.run(scenario())
    assert idempotent is False
    assert offset >= 0


def test_async_publisher_without_broker_fails_loudly() -> None:
    async def scenario() -> None:
        publisher = AsyncPublisher(f"127.0.0.1:{free_port()}", request_timeout_ms=2000)
        await publisher.start()

    with pytest.raises(KafkaConnectionError):
        asyncio.run(scenario())
    with pytest.raises(RuntimeError, match="call start"):
        asyncio.run(AsyncPublisher("127.0.0.1:1").send_and_wait(GOOD))


def test_sync_producer_is_idempotent_on_tansu_and_delivers(kafka_bootstrap: str, topics: dict[str, int]) -> None:
    producer = make_sync_producer(kafka_bootstrap)
    try:
        assert producer.config["enable_idempotence"] is True and producer.config["acks"] == -1
        run = uuid.uuid4().hex[:8]
        record = encode_event(t.MODELS_PUBLISHED, {"version": run}, run, "/trainer")
        meta = publish(producer, record).get(timeout=10)
    finally:
        producer.close()
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000)
    try:
        tp = TopicPartition(t.MODELS_PUBLISHED, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        message = next(iter(consumer))
    finally:
        consumer.close()
    event = decode_event(message.value, message.headers, message.key)
    assert (event.key, event.data, event.source) == (run, {"version": run}, "/trainer")
