"""``seed-v1``: the seed's 29 features exactly, except undefined values are 0, never NaN."""

from __future__ import annotations

import math

import numpy as np

from shared.features.base import FeatureSet
from shared.features.monthly import ShopMonths
from shared.features.panel import Panel, segment_median, segment_sum

MONTHS = tuple(range(1, 13))
SEASONAL_SALES = tuple(f"avg_sales_qty_month_{m}" for m in MONTHS)
SEASONAL_PRODUCTS = tuple(f"avg_unique_products_month_{m}" for m in MONTHS)

DESCRIPTIONS: dict[str, str] = {
    **{c: f"mean monthly volume in calendar month {c.rsplit('_', 1)[1]} over the shop's years (2 decimals)"
       for c in SEASONAL_SALES},
    **{c: f"mean distinct products in calendar month {c.rsplit('_', 1)[1]} over the shop's years (2 decimals)"
       for c in SEASONAL_PRODUCTS},
    "cv_monthly_sales_qty": "std (ddof 1) / mean of monthly volume; 0 for a zero mean or one month",
    "cv_monthly_unique_products": "std (ddof 1) / mean of monthly distinct products; 0 likewise",
    "monthly_sales_entropy": "entropy of the year-months' volume shares / ln(distinct calendar months)",
    "median_yoy_sales_growth": "median pct_change of yearly volume between consecutive active years",
    "median_yoy_spread_growth": "median pct_change of the yearly mean of distinct products",
}


def _rounded_mean(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean rounded to 2 decimals as the seed does (pandas .round == np.round, half to even); 0 where no count
    (the sum is 0 there)."""
    return np.round(sums / np.maximum(counts, 1), 2)


def _median_or_zero(values: np.ndarray) -> float:
    """NaN-skipping median (mean of the middle two for an even count); inf / NaN / no value -> 0."""
    v = np.sort(values[~np.isnan(values)])
    c = len(v)
    if c == 0:
        return 0.0
    med = (v[(c - 1) // 2] + v[c // 2]) / 2
    return float(med) if np.isfinite(med) else 0.0


def _pct_change(values: np.ndarray) -> np.ndarray:
    """pandas ``pct_change`` between consecutive values: x[i] / x[i-1] - 1 (0/0 -> NaN, x/0 -> inf).
    Call under ``np.errstate(invalid="ignore", divide="ignore")``."""
    return values[1:] / values[:-1] - 1.0


class SeedV1(FeatureSet):
    """Seasonality (24, rounded to 2 decimals), CV (2, ddof 1), entropy with the seed's calendar-month
    normaliser (1), median year-over-year growth of yearly volume and yearly mean assortment (2)."""

    name = "seed-v1"
    version = 1
    descriptions = DESCRIPTIONS
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

        with np.errstate(invalid="ignore", divide="ignore"):
            cvs = []  # coefficient of variation, ddof 1; 0 for a zero mean (seed) or one month (seed: NaN)
            for x in (panel.qty, panel.uniq):
                mean = panel.shop_sum(x) / counts
                std = np.sqrt(panel.shop_sum((x - mean[code]) ** 2) / np.maximum(counts - 1, 1))
                cvs.append(np.where((mean > 0) & (counts > 1), std / mean, 0.0))

            total = panel.shop_sum(panel.qty)
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
                med = segment_median(pct, ycode, n)
                growth.append(np.where(np.isfinite(med), med, 0.0))
        return np.column_stack([avg_q, avg_u, *cvs, entropy, *growth])

    def compute_one(self, shop: ShopMonths) -> np.ndarray:
        q, u, m0, n = shop.sales_qty, shop.unique_products, shop.month - 1, len(shop)
        month_n = np.bincount(m0, minlength=12)
        avg_q = _rounded_mean(np.bincount(m0, q, 12), month_n)
        avg_u = _rounded_mean(np.bincount(m0, u, 12), month_n)
        tail = []
        for x in (q, u):  # coefficient of variation, ddof 1
            mean = x.sum() / n
            d = x - mean
            tail.append(math.sqrt((d @ d) / (n - 1)) / mean if n > 1 and mean > 0 else 0.0)

        total, k = q.sum(), np.count_nonzero(month_n)
        p = q[q > 0] / total if total > 0 else q[:0]
        tail.append(float(-(p @ np.log(p)) / math.log(k)) if k > 1 else 0.0)

        starts = shop.year_starts
        if len(starts) < 2:
            tail += [0.0, 0.0]
        else:
            years_len = np.diff(starts, append=n)
            with np.errstate(invalid="ignore", divide="ignore"):
                for yearly in (np.add.reduceat(q, starts), np.add.reduceat(u, starts) / years_len):
                    tail.append(_median_or_zero(_pct_change(yearly)))
        return np.concatenate((avg_q, avg_u, tail))
