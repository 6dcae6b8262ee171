"""Turning a ``POST /v1/sales`` body into a list of raw records, with errors a client can act on.

A body is either one JSON array (``application/json``, also assumed when no Content-Type is sent) or NDJSON
(``application/x-ndjson``: one JSON value per line, blank lines ignored). JSON is parsed strictly (orjson):
``NaN``/``Infinity`` are not JSON and make the body malformed. A malformed body is refused as a whole (400
naming line and column); nothing of it is produced. Records that parse but break the contract are rejected one
by one later (``validate_record``), never the whole request.
"""

from __future__ import annotations

from typing import Any

import orjson

NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})


class BodyError(Exception):
    """A body that cannot be ingested at all: ``status`` (400, 413, 415, 422) and a ``detail`` for the client."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def media_type(content_type: str | None) -> str:
    """``"application/json; charset=utf-8"`` -> ``"application/json"`` (empty when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_records(body: bytes, content_type: str | None, max_records: int) -> list[Any]:
    """The raw records of a body (not yet validated). Raises ``BodyError`` for a body that is not ingestible."""
    kind = media_type(content_type)
    if kind in NDJSON_TYPES:
        return _parse_ndjson(body, max_records)
    if kind in ("", "application/json") or kind.endswith("+json"):
        return _parse_json_array(body, max_records)
    raise BodyError(
        415,
        f"unsupported Content-Type {kind!r}: send application/json (a JSON array of records) "
        "or application/x-ndjson (one record per line)",
    )


def _too_many(count: int, max_records: int) -> BodyError:
    return BodyError(413, f"too many records: {count} in this request, the limit is {max_records}; split the batch")


def _parse_json_array(body: bytes, max_records: int) -> list[Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"malformed JSON body: {exc}") from None
    if not isinstance(data, list):
        raise BodyError(
            422,
            f"body must be a JSON array of sales records, got a JSON {_json_kind(data)} "
            "(send NDJSON with Content-Type: application/x-ndjson for one record per line)",
        )
    if len(data) > max_records:
        raise _too_many(len(data), max_records)
    return data


def _parse_ndjson(body: bytes, max_records: int) -> list[Any]:
    lines = body.split(b"\n")
    records: list[Any] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(records) == max_records:
            raise _too_many(sum(1 for rest in lines if rest.strip()), max_records)
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise BodyError(400, f"malformed NDJSON at line {lineno}, column {exc.colno}: {exc.msg}") from None
    return records


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
