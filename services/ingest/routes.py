"""``POST /v1/sales``: validate a batch of sales records and hand it to Kafka, answering after the broker acks."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from services.ingest.broker import BrokerLink, BrokerUnavailable
from services.ingest.encoding import INGEST_SOURCE, rejected_event, sales_batches, sales_event
from services.ingest.metrics import IngestMetrics
from services.ingest.parsing import BodyError, parse_records
from shared.auth import AUTH_RESPONSES, bearer_ingest
from shared.bus import KafkaRecord
from shared.config import Settings
from shared.limits import RATE_LIMITED, RateLimit
from shared.logging import get_logger
from shared.schemas import ID_MAX_LENGTH, MONTH_MAX, MONTH_MIN, YEAR_MAX, YEAR_MIN, validate_record

log = get_logger("stableseg.ingest")
RETRY_AFTER_SECONDS = 5


class FieldError(BaseModel):
    field: str
    message: str


class RecordErrors(BaseModel):
    index: int
    errors: list[FieldError]


class IngestResult(BaseModel):
    accepted: int
    rejected: int
    errors: list[RecordErrors]


# A valid record's shape, for the reader of the API docs. The endpoint accepts ANY JSON values as items and
# validates each one on its own (a mixed batch accepts the valid ones, lists the rest in `errors`), so the request
# schema does not constrain items: a schema that did would call a 200 with per-record rejections a violation.
_RECORD_SHAPE = (
    "Each item should be a sales record {shop_id, product_id: non-empty string or integer (at most "
    f"{ID_MAX_LENGTH} characters), year: integer {YEAR_MIN}-{YEAR_MAX}, month: integer {MONTH_MIN}-{MONTH_MAX}, "
    "sales_qty: finite number >= 0}. Items that are not (any JSON "
    "value is accepted here) are rejected one by one: listed in `errors` and sent to sales.rejected."
)
_RECORD_EXAMPLE = {"shop_id": "S001", "product_id": "P042", "year": 2024, "month": 3, "sales_qty": 12.5}
_ITEMS = {"description": _RECORD_SHAPE, "example": _RECORD_EXAMPLE}
_OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "array", "items": _ITEMS, "description": _RECORD_SHAPE}},
            "application/x-ndjson": {
                "schema": {
                    "type": "array",
                    "items": _ITEMS,
                    "description": "the body's lines, one JSON value each (blank lines are skipped)",
                },
            },
        },
    },
    RATE_LIMITED: True,
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    400: {"description": "malformed JSON or NDJSON (the detail names line and column); nothing was produced"},
    413: {"description": "body larger than ingest_max_bytes or more than ingest_max_records records"},
    415: {"description": "Content-Type is neither application/json nor application/x-ndjson"},
    422: {"description": "the JSON body is not an array"},
    503: {
        "description": "the broker did not acknowledge the records. Retry the SAME request (Retry-After "
        "header): records replace earlier ones with the same (shop_id, product_id, year, month), so a retry "
        "never double counts even if part of the batch had been written"
    },
}


def build_events(raws: list[Any]) -> tuple[list[KafkaRecord], int, list[RecordErrors]]:
    """Validate every raw record: (events to produce, number accepted, per-index errors of the rejected)."""
    valid_batch, rejected_batch = sales_batches(INGEST_SOURCE)
    events: list[KafkaRecord] = []
    errors: list[RecordErrors] = []
    for index, raw in enumerate(raws):
        record, problems = validate_record(raw)
        if record is not None:
            events.append(sales_event(valid_batch, index, record))
        else:
            events.append(rejected_event(rejected_batch, index, raw, problems, "ingest"))
            errors.append(RecordErrors(index=index, errors=[FieldError(**p) for p in problems]))
    return events, len(raws) - len(errors), errors


def sales_router(settings: Settings, link: BrokerLink, metrics: IngestMetrics) -> APIRouter:
    router = APIRouter(tags=["ingest"])
    guards = [Depends(RateLimit(settings.ingest_rate_limit)), Depends(bearer_ingest(settings))]

    @router.post(
        "/v1/sales",
        summary="Ingest monthly sales records",
        max_body_size=settings.ingest_max_bytes,
        openapi_extra=_OPENAPI_BODY,
        responses=_RESPONSES,
        dependencies=guards,
    )
    async def post_sales(request: Request) -> IngestResult:
        """A JSON array (or NDJSON with ``Content-Type: application/x-ndjson``) of sales records; with
        ``STABLESEG_INGEST_TOKEN`` set, ``Authorization: Bearer <token>`` is required. Valid records
        go to ``sales.monthly`` (key shop_id), invalid ones to ``sales.rejected`` with their errors; the answer
        comes after the broker acknowledged all of them."""
        body = await request.body()
        content_type = request.headers.get("content-type")
        try:
            raws = await asyncio.to_thread(parse_records, body, content_type, settings.ingest_max_records)
        except BodyError as exc:
            raise HTTPException(exc.status, exc.detail) from None
        events, accepted, errors = await asyncio.to_thread(build_events, raws)
        try:
            with metrics.ack_seconds.time():
                await link.publish(events)
        except BrokerUnavailable as exc:
            metrics.broker_failures.inc()
            log.warning("ingest.broker_unavailable", records=len(events), error=str(exc))
            raise HTTPException(
                503,
                f"broker unavailable, the records were not acknowledged (some may still be written): {exc}. "
                "Retry the same request later (records are replace-on-key, so a retry never double counts)",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None
        metrics.records.labels(outcome="accepted").inc(accepted)
        metrics.records.labels(outcome="rejected").inc(len(errors))
        log.info("ingest.batch", accepted=accepted, rejected=len(errors))
        return IngestResult(accepted=accepted, rejected=len(errors), errors=errors)

    return router
