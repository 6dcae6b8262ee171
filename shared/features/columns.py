"""Checked access to the columns of a raw sales frame: errors name the column and the problem."""

from __future__ import annotations

import numpy as np
import pandas as pd

SALES_COLUMNS = ("shop_id", "product_id", "year", "month", "sales_qty")
MONTHLY_COLUMNS = ("shop_id", "year", "month", "monthly_sales_qty", "monthly_unique_products")


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    """Raise ValueError naming every missing column."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; expected {list(columns)}")


def _bad_rows(name: str, mask: np.ndarray, problem: str, index: pd.Index) -> None:
    if mask.any():
        first = index[int(np.flatnonzero(mask)[0])]
        raise ValueError(f"{name}: {int(mask.sum())} row(s) {problem} (first at index {first!r})")


def int_column(frame: pd.DataFrame, name: str, low: int, high: int) -> np.ndarray:
    """An integer column as int64, checked for missing, non-integer and out-of-range values."""
    column = frame[name]
    if pd.api.types.is_integer_dtype(column.dtype) and not column.hasnans:  # fast path: only the range to check
        ints = column.to_numpy(dtype=np.int64)
        _bad_rows(name, (ints < low) | (ints > high), f"are outside {low}..{high}", frame.index)
        return ints
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    _bad_rows(name, np.isnan(values), "are missing or not numbers", frame.index)
    _bad_rows(name, values != np.floor(values), "are not integers", frame.index)
    _bad_rows(name, (values < low) | (values > high), f"are outside {low}..{high}", frame.index)
    return values.astype(np.int64)


def qty_column(frame: pd.DataFrame) -> np.ndarray:
    values = pd.to_numeric(frame["sales_qty"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    _bad_rows("sales_qty", ~np.isfinite(values), "are missing, not numbers or not finite", frame.index)
    _bad_rows("sales_qty", values < 0, "are negative", frame.index)
    return values


def _compact_ints(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, int] | None:
    """(value - min, max - min + 1) for an integer column in a compact range, else None."""
    column = frame[name]
    if not (pd.api.types.is_integer_dtype(column.dtype) and len(column) and not column.hasnans):
        return None
    values = column.to_numpy(dtype=np.int64)
    low, high = int(values.min()), int(values.max())
    if high - low >= 4 * len(values) + (1 << 20):
        return None
    return values - low, high - low + 1  # a new array: to_numpy may share the frame's memory


def _factorize(frame: pd.DataFrame, name: str, sort: bool) -> tuple[np.ndarray, pd.Index]:
    """pd.factorize; pandas string arrays go through their object values (faster to hash)."""
    column = frame[name]
    values = column.to_numpy(dtype=object) if pd.api.types.is_string_dtype(column.dtype) else column
    codes, uniques = pd.factorize(values, sort=sort)
    _bad_rows(name, codes < 0, "are missing", frame.index)
    dtype = column.dtype if pd.api.types.is_string_dtype(column.dtype) else None
    return codes.astype(np.int64, copy=False), pd.Index(uniques, dtype=dtype, name=name)


def id_codes(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, pd.Index]:
    """(code per row, sorted distinct ids) of an id column; missing ids are an error.

    Integer ids in a compact range are coded in O(n) without hashing; anything else goes through
    ``pd.factorize``.
    """
    compact = _compact_ints(frame, name)
    if compact is not None:
        offset, span = compact
        present = np.bincount(offset, minlength=span) > 0
        low = int(frame[name].min())
        return (np.cumsum(present) - 1)[offset], pd.Index(np.flatnonzero(present) + low, name=name)
    return _factorize(frame, name, sort=True)


def id_keys(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, int]:
    """(key per row, key count): equal ids <-> equal keys in 0..count-1, in no particular order. Cheaper than
    ``id_codes`` when only identity matters."""
    compact = _compact_ints(frame, name)
    if compact is not None:
        return compact
    codes, uniques = _factorize(frame, name, sort=False)
    return codes, len(uniques)
