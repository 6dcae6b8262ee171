"""Ingest without a broker: body parsing, batch CloudEvents encoding, rejected-record values."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from services.ingest.encoding import (
    REJECTED_RECORD_MAX_BYTES,
    EventBatch,
    rejected_key,
    rejected_value,
    sales_event,
)
from services.ingest.parsing import BodyError, parse_records
from shared.bus import decode_event, encode_event
from shared.bus.topics import SALES_MONTHLY
from shared.schemas import SalesRecord
from tests.services.ingest.bodies import UNUSABLE_BODIES, UNUSABLE_BODY_FIELDS

RECORD = {"shop_id": "S1", "product_id": "P1", "year": 2020, "month": 3, "sales_qty": 4.5}


def test_json_array_and_ndjson_give_the_same_records() -> None:
    records = [RECORD, {**RECORD, "shop_id": 7}]
    as_json = parse_records(orjson.dumps(records), "application/json; charset=utf-8", 10)
    ndjson = b"\n".join(orjson.dumps(r) for r in records) + b"\n\n"
    assert as_json == records
    assert parse_records(ndjson, "application/x-ndjson", 10) == records
    assert parse_records(orjson.dumps(records), None, 10) == records  # no Content-Type: JSON


@pytest.mark.parametrize(UNUSABLE_BODY_FIELDS, UNUSABLE_BODIES)
def test_unusable_bodies_are_refused_with_a_clear_detail(body: bytes, content_type: str, status: int, needle: str):
    with pytest.raises(BodyError) as info:
        parse_records(body, content_type, 10)
    assert info.value.status == status
    assert needle in info.value.detail


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_record_count_limit(content_type: str) -> None:
    records = [RECORD] * 11
    body = orjson.dumps(records) if content_type == "application/json" else b"\n".join(map(orjson.dumps, records))
    assert len(parse_records(body, content_type, 11)) == 11
    with pytest.raises(BodyError) as info:
        parse_records(body, content_type, 10)
    assert info.value.status == 413 and "11 in this request, the limit is 10" in info.value.detail


def test_batch_events_match_the_library_encoding() -> None:
    """A batch reuses the library's headers; only ce_id differs per record, and it stays unique."""
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    batch = EventBatch(SALES_MONTHLY, "/test", time=when)
    record = SalesRecord.model_validate(RECORD)
    fast = [sales_event(batch, i, record) for i in range(3)]
    slow = encode_event(SALES_MONTHLY, record.model_dump(), "S1", "/test", time=when)
    assert {name for name, _ in fast[0].headers} == {name for name, _ in slow.headers}
    for name, value in slow.headers:
        if name != "ce_id":
            assert dict(fast[0].headers)[name] == value
    assert fast[0].value == slow.value and fast[0].key == slow.key == b"S1"
    events = [decode_event(r.value, r.headers, r.key) for r in fast]
    assert len({e.id for e in events}) == 3
    assert all(e.data == RECORD and e.time == when and e.type == "io.stableseg.sales.monthly.v1" for e in events)


@pytest.mark.parametrize(
    ("raw", "key"),
    [({"shop_id": "S9"}, "S9"), ({"shop_id": 12}, "12"), ({"shop_id": True}, ""), ({"shop_id": 1.5}, ""),
     ({"shop_id": "x" * 65}, ""), ({}, ""), ([1, 2], ""), ("S1", "")],
)
def test_rejected_key(raw: object, key: str) -> None:
    assert rejected_key(raw) == key


def test_rejected_value_keeps_the_record_or_a_preview_when_huge() -> None:
    errors = [{"field": "month", "message": "too big"}]
    small = {"shop_id": "S1", "month": 13}
    assert rejected_value(small, errors, "ingest") == {"record": small, "errors": errors, "source": "ingest"}
    huge = {"shop_id": "S1", "blob": "x" * (REJECTED_RECORD_MAX_BYTES + 1)}
    value = rejected_value(huge, errors, "ingest")["record"]
    assert value["truncated"] is True and value["size_bytes"] > REJECTED_RECORD_MAX_BYTES
    assert value["preview"].startswith('{"shop_id":"S1"') and len(value["preview"]) <= 1024
