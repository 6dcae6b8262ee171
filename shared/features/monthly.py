"""The monthly table: per (shop, year, month) volume and distinct products, after the replace rule.

Two shapes of one thing: ``monthly_table`` (all shops, a DataFrame, batch) and ``ShopMonths`` (one shop's
rows as numpy arrays, what the streaming service keeps per shop and feeds to ``FeatureSet.compute_one``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from shared.schemas import MONTH_MAX, MONTH_MIN, YEAR_MAX, YEAR_MIN

SALES_COLUMNS = ("shop_id", "product_id", "year", "month", "sales_qty")
MONTHLY_COLUMNS = ("shop_id", "year", "month", "monthly_sales_qty", "monthly_unique_products")
_EMPTY_DTYPES = (object, np.int64, np.int64, np.float64, np.int64)


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


def _int_column(frame: pd.DataFrame, name: str, low: int, high: int) -> np.ndarray:
    """An integer column as int64, checked for missing, non-integer and out-of-range values."""
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    _bad_rows(name, np.isnan(values), "are missing or not numbers", frame.index)
    _bad_rows(name, values != np.floor(values), "are not integers", frame.index)
    _bad_rows(name, (values < low) | (values > high), f"are outside {low}..{high}", frame.index)
    return values.astype(np.int64)


def _qty_column(frame: pd.DataFrame) -> np.ndarray:
    values = pd.to_numeric(frame["sales_qty"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    _bad_rows("sales_qty", ~np.isfinite(values), "are missing, not numbers or not finite", frame.index)
    _bad_rows("sales_qty", values < 0, "are negative", frame.index)
    return values


def _id_codes(frame: pd.DataFrame, name: str, sort: bool) -> tuple[np.ndarray, pd.Index]:
    codes, uniques = pd.factorize(frame[name], sort=sort)
    _bad_rows(name, codes < 0, "are missing", frame.index)
    return codes.astype(np.int64, copy=False), pd.Index(uniques, name=name)


def _latest_rows(cell: np.ndarray, product: np.ndarray, n_cells: int, n_products: int) -> np.ndarray:
    """Row numbers of the last row of every (cell, product), sorted by (cell, product): the replace rule."""
    if n_cells * n_products < 2**62:
        key = cell * n_products + product
        order = np.argsort(key, kind="stable")  # stable: equal keys stay in row order, the last one wins
        key = key[order]
        last = np.r_[key[1:] != key[:-1], True]
    else:  # too many combinations for one int64 key
        order = np.lexsort((product, cell))
        c, p = cell[order], product[order]
        last = np.r_[(c[1:] != c[:-1]) | (p[1:] != p[:-1]), True]
    return order[last]


def monthly_table(sales: pd.DataFrame) -> pd.DataFrame:
    """Raw sales records -> the monthly table (columns ``MONTHLY_COLUMNS``, sorted by shop_id, year, month).

    A later row with the same (shop_id, product_id, year, month) replaces the earlier one. Then per (shop, year,
    month): ``monthly_sales_qty`` = sum of sales_qty, ``monthly_unique_products`` = distinct products (a product
    with qty 0 still counts). Numpy sort-based grouping: no pandas groupby.
    """
    require_columns(sales, SALES_COLUMNS, "sales")
    shop, shops = _id_codes(sales, "shop_id", sort=True)
    product, products = _id_codes(sales, "product_id", sort=False)
    year = _int_column(sales, "year", YEAR_MIN, YEAR_MAX)
    month = _int_column(sales, "month", MONTH_MIN, MONTH_MAX)
    qty = _qty_column(sales)
    if len(sales) == 0:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(MONTHLY_COLUMNS, _EMPTY_DTYPES, strict=True)})

    year0 = int(year.min())
    n_periods = (int(year.max()) - year0 + 1) * 12
    cell = shop * n_periods + (year - year0) * 12 + (month - 1)  # (shop, year-month), ordered like the output
    kept = _latest_rows(cell, product, len(shops) * n_periods, max(len(products), 1))
    cell_k = cell[kept]
    starts = np.flatnonzero(np.r_[True, cell_k[1:] != cell_k[:-1]])
    sums = np.add.reduceat(qty[kept], starts)
    counts = np.diff(np.r_[starts, len(cell_k)])
    cells = cell_k[starts]
    period = cells % n_periods
    return pd.DataFrame(
        {
            "shop_id": shops.take(cells // n_periods).array,
            "year": year0 + period // 12,
            "month": period % 12 + 1,
            "monthly_sales_qty": sums,
            "monthly_unique_products": counts.astype(np.int64),
        }
    )


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
