"""Streaming a generated sales CSV through the ingest API, month by month, the way a retailer feed would arrive."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from services.demo.options import DemoError
from shared.progress import Progress, or_silent

NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Month:
    """The sales rows of one calendar month."""

    period: str
    rows: pl.DataFrame


@dataclass
class StreamSummary:
    months: int = 0
    requests: int = 0
    accepted: int = 0
    rejected: int = 0


class _Retry(Exception):
    """The ingest service answered 503 (or could not be reached): the same request is sent again."""


def read_months(sales_csv: Path) -> list[Month]:
    """The CSV split into calendar months, in month order."""
    frame = pl.read_csv(sales_csv, schema_overrides={"shop_id": pl.String, "product_id": pl.String})
    frame = frame.with_columns(period=pl.format("{}-{}", pl.col("year"), pl.col("month").cast(pl.String)
                                                .str.zfill(2)))
    parts = frame.partition_by("period", as_dict=True, include_key=False)
    return [Month(key[0], parts[key]) for key in sorted(parts)]


def split_at(months: list[Month], period: str) -> tuple[list[Month], list[Month]]:
    """(months before ``period``, months from ``period`` on)."""
    return [m for m in months if m.period < period], [m for m in months if m.period >= period]


def _bodies(month: Month, batch_records: int) -> Iterator[tuple[bytes, int]]:
    for start in range(0, month.rows.height, batch_records):
        chunk = month.rows.slice(start, batch_records)
        yield chunk.write_ndjson().encode(), chunk.height


class IngestClient:
    """POSTs NDJSON batches to ``/v1/sales`` (with the ingest token when one is given); a 429, a 503 or a dropped
    connection is retried with the same body (records replace earlier ones with the same key, so a retry never
    double counts)."""

    def __init__(self, base_url: str, batch_records: int, retry_for: float = 60.0, in_flight: int = 2,
                 token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(60.0, connect=5.0), headers=headers)
        self.batch_records = batch_records
        self.in_flight = in_flight
        self.retry_for = retry_for

    def close(self) -> None:
        self.client.close()

    def post(self, body: bytes) -> dict:
        def attempt() -> dict:
            try:
                response = self.client.post("/v1/sales", content=body, headers={"Content-Type": NDJSON})
            except httpx.TransportError as exc:
                raise _Retry(repr(exc)) from exc
            if response.status_code in (429, 503):
                raise _Retry(response.text[:300])
            if response.status_code != 200:
                raise DemoError(f"POST /v1/sales answered {response.status_code}: {response.text[:500]}", "ingest")
            return response.json()

        retrying = Retrying(retry=retry_if_exception_type(_Retry), stop=stop_after_delay(self.retry_for),
                            wait=wait_exponential(0.2, max=5), reraise=True)
        try:
            return retrying(attempt)
        except _Retry as exc:
            raise DemoError(f"POST /v1/sales kept failing for {self.retry_for:.0f} s: {exc}", "ingest") from None

    def stream(self, months: list[Month], progress: Progress | None = None) -> StreamSummary:
        """Send every month in order: a month's batches go out ``in_flight`` at a time, and the month completes
        before the next one starts; ``progress(month "YYYY-MM", records acknowledged, records)``."""
        summary = StreamSummary()
        report, done, total = or_silent(progress), 0, sum(month.rows.height for month in months)
        with ThreadPoolExecutor(self.in_flight, thread_name_prefix="demo-ingest") as pool:
            for month in months:
                futures = {pool.submit(self.post, body): count for body, count in _bodies(month, self.batch_records)}
                for future in as_completed(futures):
                    answer = future.result()
                    summary.requests += 1
                    summary.accepted += int(answer["accepted"])
                    summary.rejected += int(answer["rejected"])
                    done += futures[future]
                    report(month.period, done, total)
                summary.months += 1
        return summary
