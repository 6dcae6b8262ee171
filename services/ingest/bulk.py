"""Bulk loading of a Kaggle-schema sales CSV into ``sales.monthly``.

The file is read and validated in chunks (``shared.data.csv_io.iter_sales_batches``, in a worker thread so the
next chunk is parsed while the current one is on the wire). Valid rows become CloudEvents on ``sales.monthly``
(key shop_id); rejected rows go to ``sales.rejected`` (value: the fields as read, the errors, ``source`` "ingest"
and the CSV ``line``) and optionally to a CSV file.

Records go out through ``kafka_batches.BatchSender`` (aiokafka record batches, acks=all); every batch's outcome is
checked: a failed batch makes ``load_csv`` raise ``BulkLoadError``, so nothing is lost silently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from aiokafka import AIOKafkaProducer

from services.ingest.encoding import EventBatch, rejected_key
from services.ingest.kafka_batches import BatchSender, BulkLoadError, make_bulk_producer
from shared.bus.topics import SALES_MONTHLY, SALES_REJECTED
from shared.data.csv_io import SalesBatch, iter_sales_batches
from shared.logging import get_logger
from shared.progress import Progress

BULK_SOURCE = "/stableseg/cli/ingest"
DEFAULT_CHUNKSIZE = 50_000
EXAMPLES_KEPT = 5

log = get_logger("stableseg.ingest.bulk")


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
        }


def count_data_lines(path: Path) -> int:
    """Lines after the header (for a progress total); a last line without a newline counts."""
    lines, last = 0, b"\n"
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(lines + (last != b"\n") - 1, 0)


def valid_records(batch: EventBatch, rows: pd.DataFrame) -> Iterator[tuple[bytes, bytes, list]]:
    """(key, value, headers) of each valid row; values equal ``SalesRecord.model_dump()`` of the row."""
    static = batch.static_headers
    prefix = f"{batch.batch_id}-"
    columns = (rows[name].tolist() for name in ("shop_id", "product_id", "year", "month", "sales_qty"))
    for i, (shop, product, year, month, qty) in enumerate(zip(*columns, strict=True)):
        value = orjson.dumps({"shop_id": shop, "product_id": product, "year": year, "month": month, "sales_qty": qty})
        yield shop.encode(), value, [*static, ("ce_id", f"{prefix}{i}".encode())]


async def load_csv_async(
    path: str | Path,
    producer: AIOKafkaProducer,
    *,
    chunksize: int = DEFAULT_CHUNKSIZE,
    rejects_out: Path | None = None,
    progress: Progress | None = None,
) -> LoadSummary:
    """Produce every row of ``path`` with a started producer; ``progress(file name, rows read, 0)`` after each
    chunk. Raises
    ``BulkLoadError`` when the broker failed any record, ``SalesCSVError`` when the file is unreadable."""
    path = Path(path)
    summary, start = LoadSummary(), time.perf_counter()
    if rejects_out is not None:
        rejects_out.parent.mkdir(parents=True, exist_ok=True)
        rejects_out.unlink(missing_ok=True)
    topics = (SALES_MONTHLY, SALES_REJECTED)
    sender = BatchSender(producer, {t: list(await producer.partitions_for(t)) for t in topics})
    chunks = iter_sales_batches(path, chunksize)
    upcoming = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
    try:
        while (chunk := await upcoming) is not None:
            upcoming = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))  # parse ahead while sending
            valid_batch = EventBatch(SALES_MONTHLY, BULK_SOURCE)
            for key, value, headers in valid_records(valid_batch, chunk.rows):
                sender.add(SALES_MONTHLY, key, value, headers)
            _add_rejects(sender, chunk, summary)
            await sender.flush()
            await sender.settle(keep=1)  # the previous chunk's acks; at most two chunks are in flight
            _write_rejects(chunk, rejects_out)
            rows_in_chunk = len(chunk.rows) + chunk.rejected["line"].nunique()
            summary.rows_read += rows_in_chunk
            summary.produced += len(chunk.rows)
            if progress is not None:
                progress(path.name, summary.rows_read, 0)
    except BaseException:
        await asyncio.gather(upcoming, return_exceptions=True)  # let the reader thread finish, observe its result
        await sender.abandon()
        raise
    await sender.settle()
    summary.seconds = time.perf_counter() - start
    if sender.acked != summary.produced + summary.rejected:  # defensive: every record must be accounted for
        raise BulkLoadError(f"acknowledged {sender.acked} records, expected {summary.produced + summary.rejected}")
    log.info("ingest.bulk_done", path=str(path), **summary.as_dict())
    return summary


def _add_rejects(sender: BatchSender, chunk: SalesBatch, summary: LoadSummary) -> None:
    if chunk.rejected.empty:
        return
    batch = EventBatch(SALES_REJECTED, BULK_SOURCE)
    for entry in chunk.rejected_records():
        raw = entry["record"]
        value = {"record": raw, "errors": entry["errors"], "source": "ingest", "line": entry["line"]}
        record = batch.record(entry["line"], rejected_key(raw), value)
        sender.add(record.topic, record.key, record.value, record.headers)
        summary.rejected += 1
        if len(summary.examples) < EXAMPLES_KEPT:
            summary.examples.append(entry)


def _write_rejects(chunk: SalesBatch, rejects_out: Path | None) -> None:
    if rejects_out is None or chunk.rejected.empty:
        return
    chunk.rejected.to_csv(rejects_out, mode="a", header=not rejects_out.exists(), index=False)


def load_csv(
    path: str | Path,
    bootstrap: str,
    *,
    chunksize: int = DEFAULT_CHUNKSIZE,
    rejects_out: Path | None = None,
    progress: Progress | None = None,
    request_timeout_ms: int = 30_000,
    security: dict[str, Any] | None = None,
) -> LoadSummary:
    """Synchronous entry point: connect to ``bootstrap``, load the file, close the producer. A batch the broker
    has not acknowledged after ``request_timeout_ms`` fails the load."""

    async def run() -> LoadSummary:
        producer = make_bulk_producer(bootstrap, request_timeout_ms, security)
        await producer.start()
        try:
            return await load_csv_async(
                path, producer, chunksize=chunksize, rejects_out=rejects_out, progress=progress
            )
        finally:
            await producer.stop()

    return asyncio.run(run())
