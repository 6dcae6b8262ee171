"""Reader of sales CSV files in the Kaggle schema (shop_id, product_id, year, month, sales_qty).

Columns may come in any order; extra columns, and fields beyond the header's, are ignored. Validation is
vectorised (pandas) and follows the sales record contract (limits from ``shared.schemas``). Line numbers are
1-based with the header on line 1, so data row i (0-based) is line i + 2; blank lines count as lines (and are
rejected), quoted fields spanning several lines are not supported.

Two modes:
* strict (``read_sales_csv``, ``iter_sales_chunks``): raise ``SalesCSVError(line, field, message)`` at the
  first problem;
* collecting (``collect_sales_csv``, ``iter_sales_batches``): return valid rows and the rejected ones
  (line, field, message and the fields as received), one rejected row per problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shared.schemas import ID_MAX_LENGTH, MONTH_MAX, MONTH_MIN, SALES_FIELDS, YEAR_MAX, YEAR_MIN

SALES_DTYPES = {"shop_id": "str", "product_id": "str", "year": "int64", "month": "int64", "sales_qty": "float64"}
REJECT_FIELDS = ("line", "field", "message")
DEFAULT_CHUNKSIZE = 200_000
_FIELD_ORDER = {name: i for i, name in enumerate(("record", *SALES_FIELDS))}


class SalesCSVError(ValueError):
    """A malformed sales CSV: the 1-based line (header = 1), the field and what is wrong."""

    def __init__(self, line: int, field: str, message: str) -> None:
        self.line, self.field, self.message = line, field, message
        super().__init__(f"line {line}, {field}: {message}")


@dataclass(frozen=True)
class SalesBatch:
    """Valid rows (``SALES_DTYPES``) and rejected ones (``REJECT_FIELDS`` then the raw fields as text)."""

    rows: pd.DataFrame
    rejected: pd.DataFrame

    def rejected_records(self) -> list[dict]:
        """Rejects grouped by line: ``[{"line", "record": {field: text}, "errors": [{"field", "message"}]}]``."""
        out: dict[int, dict] = {}
        for rec in self.rejected.to_dict("records"):
            entry = out.setdefault(int(rec["line"]), {
                "line": int(rec["line"]), "record": {f: rec[f] for f in SALES_FIELDS}, "errors": []})
            entry["errors"].append({"field": rec["field"], "message": rec["message"]})
        return list(out.values())


def _numbers(column: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    """(values as float64, the text when the parser left the column as text, else None)."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.astype("float64"), None
    text = column.astype("str").fillna("")
    return pd.to_numeric(text, errors="coerce").astype("float64"), text


def _empty(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column):
        return np.zeros(len(column), dtype=bool)
    return (column.astype("str").fillna("") == "").to_numpy(dtype=bool)


def _shown(value: float, text: str | None) -> str:
    """The offending value as quoted text (the parser's number formatted back when no text is kept)."""
    return repr(text if text is not None else f"{value:g}")


def _integers(column: pd.Series, field: str, low: int, high: int, problems: list) -> pd.Series:
    num, text = _numbers(column)
    not_int = num.isna() | (num % 1 != 0)
    problems.append((field, not_int, text, lambda v, r: f"must be an integer, got {_shown(v, r)}"))
    problems.append((field, ~not_int & ((num < low) | (num > high)), text,
                     lambda v, r: f"must be between {low} and {high}, got {int(v)}"))
    return num


def validate_frame(raw: pd.DataFrame, first_line: int = 2) -> SalesBatch:
    """Validate one block of parsed CSV rows (row i is line ``first_line + i``) in a vectorised way.

    Id columns are text; the others may be numbers (the parser's fast path) or text (a block with bad values).
    """
    raw = raw[list(SALES_FIELDS)].reset_index(drop=True)
    problems: list = []  # (field, mask, text or None, message(value, text))
    ids = {f: raw[f].astype("str").fillna("") for f in ("shop_id", "product_id")}
    blank = np.logical_and.reduce([_empty(raw[f]) for f in SALES_FIELDS])
    problems.append(("record", pd.Series(blank), None, lambda v, r: "empty line"))
    for field, text in ids.items():
        length = text.str.len()
        problems.append((field, length == 0, text, lambda v, r: "must not be empty"))
        problems.append((field, length > ID_MAX_LENGTH, text,
                         lambda v, r: f"must be at most {ID_MAX_LENGTH} characters, got {len(r)}"))
    year = _integers(raw["year"], "year", YEAR_MIN, YEAR_MAX, problems)
    month = _integers(raw["month"], "month", MONTH_MIN, MONTH_MAX, problems)
    qty, qty_text = _numbers(raw["sales_qty"])
    missing = qty.isna()
    nan_text = missing.copy() if qty_text is None else missing & qty_text.str.strip().str.lower().isin(
        ["nan", "+nan", "-nan"])
    problems.append(("sales_qty", missing & ~nan_text, qty_text, lambda v, r: f"must be a number, got {r!r}"))
    problems.append(("sales_qty", nan_text | np.isinf(qty), qty_text,
                     lambda v, r: f"must be a finite number, got {_shown(v, r)}"))
    problems.append(("sales_qty", (qty < 0) & ~np.isinf(qty), qty_text, lambda v, r: f"must be >= 0, got {v:g}"))

    values = {"year": year, "month": month, "sales_qty": qty}
    bad = np.zeros(len(raw), dtype=bool)
    parts = []
    for field, mask, text, message in problems:
        mask = mask.to_numpy(dtype=bool) & (~blank if field != "record" else True)
        if not mask.any():
            continue
        bad |= mask
        idx = np.flatnonzero(mask)
        texts = text.iloc[idx].tolist() if text is not None else [None] * idx.size
        vals = values[field].iloc[idx].tolist() if field in values else [None] * idx.size
        part = raw.iloc[idx].astype("str").fillna("").astype(object)
        part.insert(0, "message", [message(v, r) for v, r in zip(vals, texts, strict=True)])
        part.insert(0, "field", field)
        part.insert(0, "line", idx + first_line)
        parts.append(part)
    rejected = _sort_rejects(pd.concat(parts) if parts else pd.DataFrame(columns=[*REJECT_FIELDS, *SALES_FIELDS]))
    ok = ~bad
    rows = pd.DataFrame({
        "shop_id": ids["shop_id"][ok], "product_id": ids["product_id"][ok],
        "year": year[ok], "month": month[ok], "sales_qty": qty[ok],
    }).astype(SALES_DTYPES).reset_index(drop=True)
    return SalesBatch(rows=rows, rejected=rejected)


def _sort_rejects(rejected: pd.DataFrame) -> pd.DataFrame:
    rejected = rejected[[*REJECT_FIELDS, *SALES_FIELDS]].astype({"line": "int64"})
    order = rejected["field"].map(_FIELD_ORDER)
    return rejected.assign(_o=order).sort_values(["line", "_o"], kind="stable").drop(columns="_o").reset_index(
        drop=True)


def _header(path: Path) -> list[str]:
    """The header's column names as written; raises when one of SALES_FIELDS is missing."""
    try:
        columns = [str(c) for c in pd.read_csv(path, nrows=0, skipinitialspace=True).columns]
    except pd.errors.EmptyDataError:
        raise SalesCSVError(1, "header", "the file is empty (expected a header line)") from None
    names = [c.strip() for c in columns]
    for field in SALES_FIELDS:
        if field not in names:
            raise SalesCSVError(1, field, f"missing column {field!r} (the header has: {', '.join(names)})")
    return columns


def iter_sales_batches(path: str | Path, chunksize: int = DEFAULT_CHUNKSIZE) -> Iterator[SalesBatch]:
    """Collecting mode, in chunks of ``chunksize`` lines: valid and rejected rows of each chunk."""
    path = Path(path)
    if chunksize < 1:
        raise ValueError(f"chunksize: must be a positive integer, got {chunksize!r}")
    text_columns = {c: str for c in _header(path) if c.strip() in ("shop_id", "product_id")}
    # ids as text; numbers parsed by the C parser (a column it cannot parse comes back as text)
    reader = pd.read_csv(path, usecols=lambda c: c.strip() in SALES_FIELDS, keep_default_na=False, na_filter=False,
                         dtype=text_columns,
                         skip_blank_lines=False, skipinitialspace=True, chunksize=chunksize)
    with reader:
        for chunk in reader:
            chunk.columns = [c.strip() for c in chunk.columns]
            yield validate_frame(chunk, first_line=int(chunk.index[0]) + 2 if len(chunk) else 2)


def iter_sales_chunks(path: str | Path, chunksize: int = DEFAULT_CHUNKSIZE) -> Iterator[pd.DataFrame]:
    """Strict mode, in chunks: valid rows (``SALES_DTYPES``); raises ``SalesCSVError`` at the first problem."""
    for batch in iter_sales_batches(path, chunksize):
        if len(batch.rejected):
            first = batch.rejected.iloc[0]
            raise SalesCSVError(int(first["line"]), str(first["field"]), str(first["message"]))
        yield batch.rows


def read_sales_csv(path: str | Path, chunksize: int = DEFAULT_CHUNKSIZE) -> pd.DataFrame:
    """Strict mode, the whole file as one frame (``SALES_DTYPES``)."""
    frames = list(iter_sales_chunks(path, chunksize))
    return pd.concat(frames, ignore_index=True) if frames else _empty_rows()


def collect_sales_csv(path: str | Path, chunksize: int = DEFAULT_CHUNKSIZE) -> SalesBatch:
    """Collecting mode, the whole file: every valid row and every rejected one."""
    batches = list(iter_sales_batches(path, chunksize))
    if not batches:
        return SalesBatch(_empty_rows(), _sort_rejects(pd.DataFrame(columns=[*REJECT_FIELDS, *SALES_FIELDS])))
    return SalesBatch(pd.concat([b.rows for b in batches], ignore_index=True),
                      pd.concat([b.rejected for b in batches], ignore_index=True))


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame({f: pd.Series(dtype=d) for f, d in SALES_DTYPES.items()})
