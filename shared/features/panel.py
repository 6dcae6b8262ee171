"""A monthly table of many shops in segment form, for vectorised (numpy, no groupby) batch features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from shared.features.columns import MONTHLY_COLUMNS, require_columns


@dataclass(frozen=True)
class Panel:
    """Rows sorted by (shop, year, month); ``code`` is the row's shop position in ``shops`` (sorted ids).

    Every shop owns the contiguous rows ``starts[i] : starts[i] + counts[i]`` (never empty).
    """

    shops: pd.Index
    code: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    year: np.ndarray
    month: np.ndarray
    period: np.ndarray
    qty: np.ndarray
    uniq: np.ndarray

    @classmethod
    def from_monthly(cls, monthly: pd.DataFrame | Panel) -> Panel:
        """Build from a monthly table (``MONTHLY_COLUMNS``, any row order); a Panel is returned as is."""
        if isinstance(monthly, Panel):
            return monthly
        require_columns(monthly, MONTHLY_COLUMNS, "monthly")
        code, shops = pd.factorize(monthly["shop_id"], sort=True)
        if (code < 0).any():
            raise ValueError("monthly.shop_id: missing values")
        year = _ints(monthly, "year")
        month = _ints(monthly, "month")
        if ((month < 1) | (month > 12)).any():
            raise ValueError("monthly.month: values must be 1..12")
        qty = _nonneg(monthly, "monthly_sales_qty")
        uniq = _nonneg(monthly, "monthly_unique_products")
        code = code.astype(np.int64, copy=False)
        period = year * 12 + (month - 1)
        n = len(code)
        in_order = n < 2 or bool(
            ((code[1:] > code[:-1]) | ((code[1:] == code[:-1]) & (period[1:] > period[:-1]))).all()
        )
        if not in_order:
            order = np.lexsort((period, code))
            code, year, month, period, qty, uniq = (a[order] for a in (code, year, month, period, qty, uniq))
            if ((code[1:] == code[:-1]) & (period[1:] == period[:-1])).any():
                raise ValueError("monthly: a (shop_id, year, month) appears more than once")
        return cls.from_sorted(pd.Index(shops), code, year, month, qty, uniq)

    @classmethod
    def from_sorted(
        cls, shops: pd.Index, code: np.ndarray, year: np.ndarray, month: np.ndarray, qty: np.ndarray, uniq: np.ndarray
    ) -> Panel:
        """From arrays already sorted by (code, year, month), unique, and validated."""
        n = len(code)
        starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if n else np.zeros(0, np.int64)
        counts = np.diff(np.r_[starts, n]).astype(np.int64)
        period = year * 12 + (month - 1)
        return cls(shops.rename("shop_id"), code, starts, counts, year, month, period, qty, uniq)

    def to_frame(self) -> pd.DataFrame:
        """The monthly table (``MONTHLY_COLUMNS``), sorted by shop_id, year, month."""
        return pd.DataFrame(
            {
                "shop_id": self.shops.take(self.code).array,
                "year": self.year,
                "month": self.month,
                "monthly_sales_qty": self.qty,
                "monthly_unique_products": self.uniq.astype(np.int64),
            }
        )

    @property
    def n_shops(self) -> int:
        return len(self.shops)

    def shop_sum(self, values: np.ndarray) -> np.ndarray:
        """Per-shop sum of a per-row array (sequential, in row order)."""
        return np.bincount(self.code, weights=values, minlength=self.n_shops)

    def shop_month_key(self) -> np.ndarray:
        """Per row: shop * 12 + calendar month - 1 (for shop x calendar-month bins)."""
        return self.code * 12 + (self.month - 1)

    def years(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (shop, year) groups: (shop code, first row, row count) of each, in row order."""
        n = len(self.code)
        if n == 0:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty
        new = np.r_[True, (self.code[1:] != self.code[:-1]) | (self.year[1:] != self.year[:-1])]
        ystart = np.flatnonzero(new)
        return self.code[ystart], ystart, np.diff(np.r_[ystart, n])


def _ints(frame: pd.DataFrame, name: str) -> np.ndarray:
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(values).any() or (values != np.floor(values)).any():
        raise ValueError(f"monthly.{name}: values must be integers (found missing or fractional values)")
    return values.astype(np.int64)


def _nonneg(frame: pd.DataFrame, name: str) -> np.ndarray:
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if not (np.isfinite(values).all() and (values >= 0).all()):
        raise ValueError(f"monthly.{name}: values must be finite numbers >= 0")
    return values


def segment_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum of each contiguous segment beginning at ``starts`` (segments non-empty)."""
    return np.add.reduceat(values, starts) if len(starts) else np.zeros(0, np.float64)


def segment_median(values: np.ndarray, seg: np.ndarray, n_segs: int) -> np.ndarray:
    """NaN-skipping median of ``values`` per segment id ``seg`` (NaN where a segment has no value).

    Like ``np.median``: the mean of the two middle values for an even count; +inf sorts last.
    """
    valid = ~np.isnan(values)
    v, s = values[valid], seg[valid]
    order = np.lexsort((v, s))
    v = v[order]
    cnt = np.bincount(s, minlength=n_segs)
    first = np.r_[0, np.cumsum(cnt)[:-1]].astype(np.int64) if n_segs else np.zeros(0, np.int64)
    out = np.full(n_segs, np.nan)
    has = cnt > 0
    lo, hi = (first + (cnt - 1) // 2)[has], (first + cnt // 2)[has]
    with np.errstate(invalid="ignore", over="ignore"):
        out[has] = (v[lo] + v[hi]) / 2
    return out
