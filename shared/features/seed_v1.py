"""``seed-v1``: the seed's 29 features exactly (seed-notes.md), except undefined values are 0, never NaN."""

from __future__ import annotations

import numpy as np

from shared.features.base import FeatureSet
from shared.features.monthly import ShopMonths
from shared.features.panel import Panel, segment_median, segment_sum

MONTHS = tuple(range(1, 13))
SEASONAL_SALES = tuple(f"avg_sales_qty_month_{m}" for m in MONTHS)
SEASONAL_PRODUCTS = tuple(f"avg_unique_products_month_{m}" for m in MONTHS)


def _rounded_mean(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean rounded to 2 decimals as the seed does (pandas .round == np.round, half to even); 0 where no count."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.round(sums / np.maximum(counts, 1), 2), 0.0)


def _cv(std: np.ndarray | float, mean: np.ndarray | float, n: np.ndarray | int) -> np.ndarray:
    """std / mean; 0 when the mean is 0 (seed) or with one month (seed: NaN)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((mean > 0) & (n > 1), std / mean, 0.0)


def _finite_or_zero(x: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x), x, 0.0)


def _pct_change(values: np.ndarray) -> np.ndarray:
    """pandas ``pct_change`` between consecutive values: x[i] / x[i-1] - 1 (0/0 -> NaN, x/0 -> inf)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return values[1:] / values[:-1] - 1.0


class SeedV1(FeatureSet):
    """Seasonality (24, rounded to 2 decimals), CV (2, ddof 1), entropy with the seed's calendar-month
    normaliser (1), median year-over-year growth of yearly volume and yearly mean assortment (2)."""

    name = "seed-v1"
    version = 1
    columns = (
        *SEASONAL_SALES,
        *SEASONAL_PRODUCTS,
        "cv_monthly_sales_qty",
        "cv_monthly_unique_products",
        "monthly_sales_entropy",
        "median_yoy_sales_growth",
        "median_yoy_spread_growth",
    )

    def _batch(self, panel: Panel) -> np.ndarray:
        n, code, counts = panel.n_shops, panel.code, panel.counts
        key = panel.shop_month_key()
        month_n = np.bincount(key, minlength=12 * n).reshape(n, 12)
        avg_q = _rounded_mean(np.bincount(key, panel.qty, 12 * n).reshape(n, 12), month_n)
        avg_u = _rounded_mean(np.bincount(key, panel.uniq, 12 * n).reshape(n, 12), month_n)

        cvs = []
        for x in (panel.qty, panel.uniq):
            mean = panel.shop_sum(x) / counts
            ss = panel.shop_sum((x - mean[code]) ** 2)
            cvs.append(_cv(np.sqrt(ss / np.maximum(counts - 1, 1)), mean, counts))

        total = panel.shop_sum(panel.qty)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(total[code] > 0, panel.qty / total[code], 0.0)
            h = panel.shop_sum(np.where(p > 0, -p * np.log(p), 0.0))
            k = (month_n > 0).sum(axis=1)
            entropy = np.where(k > 1, h / np.log(k), 0.0)

        ycode, ystart, ylen = panel.years()
        same_shop = ycode[1:] == ycode[:-1]
        growth = []
        for yearly in (segment_sum(panel.qty, ystart), segment_sum(panel.uniq, ystart) / ylen):
            pct = np.full(len(ycode), np.nan)
            pct[1:][same_shop] = _pct_change(yearly)[same_shop]
            growth.append(_finite_or_zero(segment_median(pct, ycode, n)))
        return np.column_stack([avg_q, avg_u, *cvs, entropy, *growth])

    def compute_one(self, shop: ShopMonths) -> np.ndarray:
        m0 = shop.month - 1
        month_n = np.bincount(m0, minlength=12)
        avg_q = _rounded_mean(np.bincount(m0, shop.sales_qty, 12), month_n)
        avg_u = _rounded_mean(np.bincount(m0, shop.unique_products, 12), month_n)
        n = len(shop)
        cvs = []
        for x in (shop.sales_qty, shop.unique_products):
            mean = x.sum() / n
            std = np.sqrt(((x - mean) ** 2).sum() / max(n - 1, 1))
            cvs.append(float(_cv(std, mean, n)))

        total = shop.sales_qty.sum()
        entropy = 0.0
        k = int((month_n > 0).sum())
        if total > 0 and k > 1:
            p = shop.sales_qty[shop.sales_qty > 0] / total
            entropy = float(-(p * np.log(p)).sum() / np.log(k))

        ystart = np.flatnonzero(np.r_[True, shop.year[1:] != shop.year[:-1]])
        ylen = np.diff(np.r_[ystart, n])
        growth = []
        for yearly in (np.add.reduceat(shop.sales_qty, ystart), np.add.reduceat(shop.unique_products, ystart) / ylen):
            pct = _pct_change(yearly)
            pct = np.sort(pct[~np.isnan(pct)])
            c = len(pct)
            med = (pct[(c - 1) // 2] + pct[c // 2]) / 2 if c else 0.0
            growth.append(float(med) if np.isfinite(med) else 0.0)
        return np.concatenate([avg_q, avg_u, [*cvs, entropy, *growth]])
