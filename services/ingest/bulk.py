"""Bulk loading of a Kaggle-schema sales CSV into ``sales.monthly`` with a kafka-python producer.

The file is read and validated in chunks (``shared.data.csv_io.iter_sales_batches``). Valid rows become
CloudEvents on ``sales.monthly`` (key shop_id), rejected rows go to ``sales.rejected`` (value: the fields as
read, the errors, ``source`` "ingest" and the CSV ``line``) and optionally to a CSV file. Every send has a
callback: after the final flush the loader checks that each record was acknowledged (acks=all) and raises
``BulkLoadError`` otherwise, so nothing is lost silently.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from kafka import KafkaProducer

from services.ingest.encoding import EventBatch, rejected_key
from shared.bus.topics import SALES_MONTHLY, SALES_REJECTED
from shared.data.csv_io import SalesBatch, iter_sales_batches
from shared.logging import get_logger

BULK_SOURCE = "/stableseg/cli/ingest"
DEFAULT_CHUNKSIZE = 50_000
EXAMPLES_KEPT = 5

log = get_logger("stableseg.ingest.bulk")


class BulkLoadError(RuntimeError):
    """The broker did not acknowledge every record (the message says how many and the first error)."""


@dataclass
class LoadSummary:
    """What a bulk load did."""

    rows_read: int = 0
    produced: int = 0
    rejected: int = 0
    seconds: float = 0.0
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read, "produced": self.produced, "rejected": self.rejected,
            "seconds": round(self.seconds, 3), "rows_per_second": round(self.rows_per_second, 1),
        }  # fmt: skip


class _Acks:
    """Counts broker acknowledgements and failures from the producer's I/O thread."""

    def __init__(self) -> None:
        self.acked = 0
        self.failed = 0
        self.first_error: BaseException | None = None
        self._lock = threading.Lock()

    def ok(self, _metadata: object) -> None:
        with self._lock:
            self.acked += 1

    def error(self, exc: BaseException) -> None:
        with self._lock:
            self.failed += 1
            self.first_error = self.first_error or exc


def count_data_lines(path: Path) -> int:
    """Lines after the header (for a progress total); a last line without a newline counts."""
    lines, last = 0, b"\n"
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(lines + (last != b"\n") - 1, 0)


def _valid_records(batch: EventBatch, rows: pd.DataFrame) -> Iterator[tuple[bytes, bytes, list]]:
    """(key, value, headers) of each valid row; values match ``SalesRecord.model_dump()`` field for field."""
    static = batch.static_headers
    prefix = f"{batch.batch_id}-"
    columns = (rows[name].tolist() for name in ("shop_id", "product_id", "year", "month", "sales_qty"))
    for i, (shop, product, year, month, qty) in enumerate(zip(*columns, strict=True)):
        value = orjson.dumps({"shop_id": shop, "product_id": product, "year": year, "month": month, "sales_qty": qty})
        yield shop.encode(), value, [*static, ("ce_id", f"{prefix}{i}".encode())]


def load_csv(
    path: str | Path,
    producer: KafkaProducer,
    *,
    chunksize: int = DEFAULT_CHUNKSIZE,
    rejects_out: Path | None = None,
    on_progress: Callable[[int], None] | None = None,
    flush_timeout: float = 120.0,
) -> LoadSummary:
    """Produce every row of ``path``; ``on_progress(rows)`` after each chunk. Raises ``BulkLoadError`` when the
    broker failed to acknowledge any record, ``SalesCSVError`` when the file itself is unreadable."""
    path = Path(path)
    summary, acks, sent = LoadSummary(), _Acks(), 0
    start = time.perf_counter()
    if rejects_out is not None:
        rejects_out.parent.mkdir(parents=True, exist_ok=True)
        rejects_out.unlink(missing_ok=True)
    for chunk in iter_sales_batches(path, chunksize):
        valid_batch, rejected_batch = EventBatch(SALES_MONTHLY, BULK_SOURCE), EventBatch(SALES_REJECTED, BULK_SOURCE)
        for key, value, headers in _valid_records(valid_batch, chunk.rows):
            producer.send(SALES_MONTHLY, value=value, key=key, headers=headers).add_callback(acks.ok).add_errback(
                acks.error
            )
        sent += len(chunk.rows)
        for entry in chunk.rejected_records():
            raw = entry["record"]
            value = {"record": raw, "errors": entry["errors"], "source": "ingest", "line": entry["line"]}
            record = rejected_batch.record(entry["line"], rejected_key(raw), value)
            producer.send(record.topic, value=record.value, key=record.key, headers=record.headers).add_callback(
                acks.ok
            ).add_errback(acks.error)
            sent += 1
            summary.rejected += 1
            if len(summary.examples) < EXAMPLES_KEPT:
                summary.examples.append(entry)
        _write_rejects(chunk, rejects_out)
        rows_in_chunk = len(chunk.rows) + chunk.rejected["line"].nunique()
        summary.rows_read += rows_in_chunk
        summary.produced += len(chunk.rows)
        if acks.failed:
            break
        if on_progress is not None:
            on_progress(rows_in_chunk)
    producer.flush(timeout=flush_timeout)
    summary.seconds = time.perf_counter() - start
    if acks.failed or acks.acked != sent:
        raise BulkLoadError(
            f"the broker acknowledged {acks.acked} of {sent} records ({acks.failed} failed); first error: "
            f"{acks.first_error!r}. Re-run the load: records are replace-on-key, so nothing is double counted"
        )
    log.info("ingest.bulk_done", path=str(path), **summary.as_dict())
    return summary


def _write_rejects(chunk: SalesBatch, rejects_out: Path | None) -> None:
    if rejects_out is None or chunk.rejected.empty:
        return
    chunk.rejected.to_csv(rejects_out, mode="a", header=not rejects_out.exists(), index=False)
