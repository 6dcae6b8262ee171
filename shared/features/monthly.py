"""The monthly table: per (shop, year, month) volume and distinct products, after the replace rule.

Two shapes of one thing: ``monthly_table`` (all shops, a DataFrame, batch) and ``ShopMonths`` (one shop's
rows as numpy arrays, what the streaming service keeps per shop and feeds to ``FeatureSet.compute_one``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from shared.features.columns import (
    MONTHLY_COLUMNS,
    SALES_COLUMNS,
    id_codes,
    id_keys,
    int_column,
    qty_column,
    require_columns,
)
from shared.features.panel import Panel
from shared.schemas import MONTH_MAX, MONTH_MIN, YEAR_MAX, YEAR_MIN

__all__ = ["MONTHLY_COLUMNS", "SALES_COLUMNS", "ShopMonths", "monthly_panel", "monthly_table"]


def _superseded_mask(cell: np.ndarray, product: np.ndarray, n_products: int, n_cells: int) -> np.ndarray | None:
    """Replace rule: mask of the rows to keep (the last of each (cell, product)), None when all are kept.

    One value sort of ``(cell, product, row)`` packed in an int64 (SIMD-sorted: much faster than an argsort or a
    hash); a row followed by the same key in the sorted order has been replaced by a later one.
    """
    n = len(cell)
    bits = max(n - 1, 1).bit_length()
    if (n_cells * n_products) << bits >= 2**63:  # too many combinations for one int64: stable lexsort
        order = np.lexsort((product, cell))
        c, p = cell[order], product[order]
        replaced = (c[1:] == c[:-1]) & (p[1:] == p[:-1])
        rows = order[:-1][replaced]
    else:
        packed = cell * n_products
        packed += product
        packed <<= bits
        packed |= np.arange(n)
        packed.sort()
        key = packed >> bits
        rows = packed[:-1][key[1:] == key[:-1]] & ((1 << bits) - 1)
    if not len(rows):
        return None
    keep = np.ones(n, bool)
    keep[rows] = False
    return keep


def _cell_totals(cell: np.ndarray, qty: np.ndarray, n_cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cells present ascending, sum of qty, row count) per cell; sums run in row order."""
    if n_cells <= 8 * len(cell) + (1 << 20):  # dense bins: about the memory of the rows themselves
        counts = np.bincount(cell, minlength=n_cells)
        present = np.flatnonzero(counts)
        return present, np.bincount(cell, qty, n_cells)[present], counts[present]
    order = np.argsort(cell, kind="stable")
    c = cell[order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    return c[starts], np.add.reduceat(qty[order], starts), np.diff(np.r_[starts, len(c)])


def monthly_panel(sales: pd.DataFrame) -> Panel:
    """``monthly_table`` as a ``Panel`` (what the batch features consume, without a DataFrame round trip)."""
    require_columns(sales, SALES_COLUMNS, "sales")
    shop, shops = id_codes(sales, "shop_id")
    product, n_products = id_keys(sales, "product_id")
    year = int_column(sales, "year", YEAR_MIN, YEAR_MAX)
    month = int_column(sales, "month", MONTH_MIN, MONTH_MAX)
    qty = qty_column(sales)
    if len(sales) == 0:
        empty = np.zeros(0, np.int64)
        return Panel.from_sorted(shops, empty, empty, empty, np.zeros(0), np.zeros(0))
    year0 = int(year.min())
    n_periods = (int(year.max()) - year0 + 1) * 12
    cell = shop * n_periods + (year - year0) * 12 + (month - 1)  # (shop, year-month), ordered like the output
    n_cells = len(shops) * n_periods
    keep = _superseded_mask(cell, product, n_products, n_cells)
    if keep is not None:
        cell, qty = cell[keep], qty[keep]
    cells, sums, counts = _cell_totals(cell, qty, n_cells)
    code, period = np.divmod(cells, n_periods)  # every shop has a row, so codes stay dense
    return Panel.from_sorted(shops, code, year0 + period // 12, period % 12 + 1, sums, counts.astype(np.float64))


def monthly_table(sales: pd.DataFrame) -> pd.DataFrame:
    """Raw sales records -> the monthly table (columns ``MONTHLY_COLUMNS``, sorted by shop_id, year, month).

    A later row with the same (shop_id, product_id, year, month) replaces the earlier one. Then per (shop, year,
    month): ``monthly_sales_qty`` = sum of sales_qty, ``monthly_unique_products`` = distinct products (a product
    with qty 0 still counts). Numpy sort-based grouping: no pandas groupby.
    """
    return monthly_panel(sales).to_frame()


@dataclass(frozen=True)
class ShopMonths:
    """One shop's monthly table as parallel arrays; any order in, sorted by (year, month) inside.

    ``period`` (derived) is ``year * 12 + month - 1``, a month counter that makes gaps explicit.
    """

    year: np.ndarray
    month: np.ndarray
    sales_qty: np.ndarray
    unique_products: np.ndarray
    period: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        year = np.array(self.year, dtype=np.int64).ravel()  # copies: the caller's arrays stay untouched
        month = np.array(self.month, dtype=np.int64).ravel()
        qty = np.array(self.sales_qty, dtype=np.float64).ravel()
        uniq = np.array(self.unique_products, dtype=np.float64).ravel()
        n = len(year)
        for name, arr in (("month", month), ("sales_qty", qty), ("unique_products", uniq)):
            if len(arr) != n:
                raise ValueError(f"ShopMonths.{name}: length {len(arr)} differs from year's length {n}")
        if n == 0:
            raise ValueError("ShopMonths.year: a shop needs at least one month")
        if month.min() < MONTH_MIN or month.max() > MONTH_MAX:
            raise ValueError(f"ShopMonths.month: values must be {MONTH_MIN}..{MONTH_MAX}")
        for name, arr in (("sales_qty", qty), ("unique_products", uniq)):
            if not (arr.min() >= 0 and arr.max() < np.inf):  # also false for NaN
                raise ValueError(f"ShopMonths.{name}: values must be finite and >= 0")
        period = year * 12 + (month - 1)
        if n > 1 and not (period[1:] > period[:-1]).all():
            order = np.argsort(period, kind="stable")
            year, month, qty, uniq, period = year[order], month[order], qty[order], uniq[order], period[order]
            if (period[1:] == period[:-1]).any():
                raise ValueError("ShopMonths.year/month: a (year, month) appears more than once")
        for name, arr in (("year", year), ("month", month), ("sales_qty", qty), ("unique_products", uniq)):
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        period.flags.writeable = False
        object.__setattr__(self, "period", period)

    @cached_property
    def year_starts(self) -> np.ndarray:
        """Index of the first month of each active year."""
        return np.flatnonzero(np.diff(self.year, prepend=self.year[0] - 1))

    def __len__(self) -> int:
        return len(self.year)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ShopMonths:
        """One shop's rows of a monthly table (``year, month, monthly_sales_qty, monthly_unique_products``)."""
        require_columns(frame, MONTHLY_COLUMNS[1:], "monthly")
        if "shop_id" in frame.columns and frame["shop_id"].nunique(dropna=False) > 1:
            raise ValueError("monthly.shop_id: ShopMonths.from_frame takes one shop's rows, got several shops")
        return cls(
            year=frame["year"].to_numpy(),
            month=frame["month"].to_numpy(),
            sales_qty=frame["monthly_sales_qty"].to_numpy(dtype=np.float64),
            unique_products=frame["monthly_unique_products"].to_numpy(dtype=np.float64),
        )
