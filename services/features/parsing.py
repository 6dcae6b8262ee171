"""Consumed record -> APPLY row, or a ``sales.rejected`` event.

The record is the Kafka value in both CloudEvents binary mode and plain JSON, so the ``ce_*`` headers are not
parsed per record (``decode_event`` costs several times the whole per-record budget).
Validation: ``fast_record`` accepts only the plain, obviously valid shape (exact types, ranges) and hands
everything else to the contract's ``validate_record``, which decides and words the errors; a property test keeps
the two in agreement.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import orjson

from shared.bus import KafkaRecord, encode_event
from shared.bus.topics import SALES_REJECTED
from shared.feature_store.layout import month_index
from shared.schemas import ID_MAX_LENGTH, MONTH_MAX, MONTH_MIN, YEAR_MAX, YEAR_MIN, validate_record

SOURCE = "stableseg/features"
_QTY_MAX = 2.0**1023


def fingerprint(value: bytes | None, timestamp: int) -> str:
    """Identity of a Kafka record (checked when the consumer resumes at the stored offset)."""
    return f"{zlib.crc32(value or b''):x}.{timestamp:x}"


def canonical_qty(qty: float) -> str:
    """One text per value (``-0.0`` -> ``0.0``), so "unchanged" is a string comparison inside Redis."""
    return repr(float(qty) + 0.0)


def _id(value: Any) -> str | None:
    kind = type(value)
    if kind is int:
        value = str(value)
    elif kind is not str:
        return None
    return value if 0 < len(value) <= ID_MAX_LENGTH else None


def _fast(raw: Any) -> tuple[str, str, int, int, float] | None:
    """(shop, product, year, month, qty) for a plainly valid record; None = let the contract decide."""
    if type(raw) is not dict:
        return None
    shop, product = _id(raw.get("shop_id")), _id(raw.get("product_id"))
    year, month, qty = raw.get("year"), raw.get("month"), raw.get("sales_qty")
    if shop is None or product is None or type(year) is not int or type(month) is not int:
        return None
    if not (YEAR_MIN <= year <= YEAR_MAX and MONTH_MIN <= month <= MONTH_MAX):
        return None
    kind = type(qty)
    if kind is int:
        if not 0 <= qty < _QTY_MAX:
            return None
    elif kind is not float or not (qty >= 0 and math.isfinite(qty)):
        return None
    return shop, product, year, month, float(qty) + 0.0


def fast_record(raw: Any) -> tuple[str, str, str, str] | None:
    """(shop, product, "YYYY-MM", canonical qty) for a plainly valid record; None = let the contract decide."""
    fast = _fast(raw)
    if fast is None:
        return None
    shop, product, year, month, qty = fast
    return shop, product, f"{year:04d}-{month:02d}", canonical_qty(qty)


def _reject(raw: Any, errors: list[dict[str, str]]) -> KafkaRecord:
    key = raw.get("shop_id") if isinstance(raw, dict) else None
    key = str(key)[:ID_MAX_LENGTH] if isinstance(key, str | int) and not isinstance(key, bool) else ""
    return encode_event(SALES_REJECTED, {"record": raw, "errors": errors, "source": "features"}, key=key, source=SOURCE)


def parse(offset: int, value: bytes | None, timestamp: int) -> tuple[list, KafkaRecord | None]:
    """(APPLY row ``[offset, ts, shop, product, month index, qty]``, rejection or None). A rejected record's row
    has an empty shop: it only advances the offset."""
    try:
        raw: Any = orjson.loads(value) if value else None
    except orjson.JSONDecodeError as exc:
        text = value.decode("utf-8", "replace") if value else ""
        return [offset, timestamp, "", "", 0, 0.0], _reject(text, [{"field": "value", "message": str(exc)}])
    fast = _fast(raw)
    if fast is not None:
        shop, product, year, month, qty = fast
        return [offset, timestamp, shop, product, month_index(year, month), qty], None
    sale, errors = validate_record(raw)
    if sale is None:
        return [offset, timestamp, "", "", 0, 0.0], _reject(raw, errors)
    k = month_index(sale.year, sale.month)
    return [offset, timestamp, sale.shop_id, sale.product_id, k, float(sale.sales_qty) + 0.0], None
