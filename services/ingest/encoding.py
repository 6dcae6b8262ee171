"""Fast CloudEvents encoding of many sales records, keeping the library's header mapping.

``shared.bus.events.encode_event`` builds one ``CloudEvent`` per record through the cloudevents library, too
slow for bulk loads. A batch here asks the library once for the headers of the whole batch (one
``encode_event`` call: ``ce_specversion``, ``ce_type``, ``ce_source``, ``content-type`` and the batch's
``ce_time``), then gives each record its own ``ce_id`` (``<batch uuid>-<index>``). The value is the same
orjson encoding of the data ``encode_event`` produces, so ``decode_event`` reads both alike.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.bus.events import KafkaRecord, encode_event
from shared.bus.topics import SALES_MONTHLY, SALES_REJECTED
from shared.schemas import ID_MAX_LENGTH, SalesRecord

INGEST_SOURCE = "/stableseg/ingest"
REJECTED_RECORD_MAX_BYTES = 64 * 1024  # a rejected record larger than this travels as a truncated preview


class EventBatch:
    """Headers for one batch of events on one topic: library-made once, ``ce_id`` varied per record."""

    def __init__(self, topic: str, source: str, event_type: str | None = None, time: datetime | None = None) -> None:
        self.topic = topic
        self.batch_id = uuid.uuid4().hex
        sample = encode_event(topic, {}, "", source, event_type, event_id=self.batch_id, time=time or datetime.now(UTC))
        self.static_headers = [(name, value) for name, value in sample.headers if name != "ce_id"]

    def record(self, index: int, key: str, data: Any) -> KafkaRecord:
        """The ``index``-th event of the batch."""
        headers = [*self.static_headers, ("ce_id", f"{self.batch_id}-{index}".encode())]
        return KafkaRecord(self.topic, key.encode(), orjson.dumps(data), headers)


def sales_event(batch: EventBatch, index: int, record: SalesRecord) -> KafkaRecord:
    """A valid record for ``sales.monthly``, keyed by shop_id."""
    return batch.record(index, record.shop_id, record.model_dump())


def rejected_key(raw: Any) -> str:
    """Key of a rejected record: its shop_id when that is a usable id (string or integer), else ""."""
    shop = raw.get("shop_id") if isinstance(raw, dict) else None
    if isinstance(shop, bool) or not isinstance(shop, str | int):
        return ""
    text = str(shop)
    return text if len(text) <= ID_MAX_LENGTH else ""


def rejected_value(raw: Any, errors: list[dict[str, str]], source: str) -> dict[str, Any]:
    """The ``sales.rejected`` value: the record as received (a preview when huge), its errors and the source."""
    encoded = orjson.dumps(raw, option=orjson.OPT_NON_STR_KEYS)
    if len(encoded) > REJECTED_RECORD_MAX_BYTES:
        preview = encoded[:1024].decode(errors="replace")
        raw = {"truncated": True, "size_bytes": len(encoded), "preview": preview}
    return {"record": raw, "errors": errors, "source": source}


def rejected_event(batch: EventBatch, index: int, raw: Any, errors: list[dict[str, str]], source: str) -> KafkaRecord:
    """An invalid record for ``sales.rejected``."""
    return batch.record(index, rejected_key(raw), rejected_value(raw, errors, source))


def sales_batches(source: str) -> tuple[EventBatch, EventBatch]:
    """(sales.monthly batch, sales.rejected batch) for one request or chunk."""
    return EventBatch(SALES_MONTHLY, source), EventBatch(SALES_REJECTED, source)
