"""Segment profiles: a feature summary, a 12-month seasonality curve and the traits a segment is named from.

A profile is JSON stored with the segment (``GET /v1/segments/{id}``):

- ``seasonality``: 12 numbers summing to 1, the members' mean share of a year's volume per calendar month
  (January first);
- ``traits``: ``growth`` (yearly, as a fraction), ``volatility`` (coefficient of variation of monthly volume),
  ``assortment`` (distinct products per active month) and ``activity`` (share of months with sales), medians over
  the members; with ``seasonality`` they are the input of :func:`shared.segments.segment_name`;
- ``features``: ``{column: {"mean", "median", "std"}}`` over the members, in the model's feature set;
- ``source``: ``{"model_version", "cluster"}``: the model cluster the segment is in the serving model.

How traits are read from a feature set is defined here per feature set (``behaviour-v2``, ``behaviour-v3`` with the
same columns, ``seed-v1``); any other set gets a flat curve and neutral traits, so naming never fails on a new
feature set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

MONTHS = range(1, 13)
NEUTRAL_TRAITS = {"growth": 0.0, "volatility": 0.4, "assortment": 20.0, "activity": 1.0}


def _shares(values: np.ndarray) -> np.ndarray:
    """Row-normalised non-negative rows (all-zero rows stay zero)."""
    values = np.maximum(values, 0.0)
    total = values.sum(axis=1, keepdims=True)
    return np.divide(values, total, out=np.zeros_like(values), where=total > 0)


def _behaviour_v2(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    shares = _shares(frame[[f"season_share_{m}" for m in MONTHS]].to_numpy(dtype=float))
    sigma = np.minimum(frame["sales_volatility"].to_numpy(dtype=float), 3.0)  # residual std of log volume
    traits = {
        "growth": float(np.expm1(np.median(frame["sales_trend"]))),  # yearly log growth -> fraction
        "volatility": float(np.median(np.sqrt(np.expm1(sigma**2)))),  # log-normal std -> coefficient of variation
        "assortment": float(np.expm1(np.median(frame["assortment_breadth"]))),
        "activity": float(np.clip(np.median(frame["activity_ratio"]), 0.0, 1.0)),
    }
    return shares.mean(axis=0), traits


def _seed_v1(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    sales = frame[[f"avg_sales_qty_month_{m}" for m in MONTHS]].to_numpy(dtype=float)
    products = frame[[f"avg_unique_products_month_{m}" for m in MONTHS]].to_numpy(dtype=float)
    active = sales > 0
    per_shop_products = np.divide(products.sum(axis=1), active.sum(axis=1), out=np.zeros(len(frame)),
                                  where=active.any(axis=1))
    traits = {
        "growth": float(np.median(frame["median_yoy_sales_growth"])),
        "volatility": float(max(np.median(frame["cv_monthly_sales_qty"]), 0.0)),
        "assortment": float(np.median(per_shop_products)),
        "activity": float(np.median(active.mean(axis=1))),
    }
    return _shares(sales).mean(axis=0), traits


TRAIT_READERS: dict[str, Callable[[pd.DataFrame], tuple[np.ndarray, dict[str, float]]]] = {
    "behaviour-v2": _behaviour_v2,
    "behaviour-v3": _behaviour_v2,  # the same columns, recency-weighted
    "behaviour-v4": _behaviour_v2,  # the same columns, the season shrunk by reliability
    "seed-v1": _seed_v1,
}


def _finite(value: float, default: float = 0.0) -> float:
    return round(float(value), 6) if np.isfinite(value) else default


def segment_profile(members: pd.DataFrame, feature_set: str, columns: list[str]) -> dict[str, Any]:
    """The profile of one segment from its members' feature rows (index shop_id, ``columns`` among them)."""
    if members.empty:
        raise ValueError("members: a profile needs at least one member retailer")
    frame = members[columns]
    reader = TRAIT_READERS.get(feature_set)
    curve, traits = (np.full(12, 1 / 12), dict(NEUTRAL_TRAITS)) if reader is None else reader(frame)
    if curve.sum() <= 0:
        curve = np.full(12, 1 / 12)
    curve = curve / curve.sum()
    values = frame.to_numpy(dtype=float)
    std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
    summary = {
        column: {"mean": _finite(mean), "median": _finite(median), "std": _finite(sd)}
        for column, mean, median, sd in zip(columns, values.mean(axis=0), np.median(values, axis=0), std, strict=True)
    }
    return {
        "seasonality": [_finite(v) for v in curve],
        "traits": {name: _finite(value, NEUTRAL_TRAITS[name]) for name, value in traits.items()},
        "features": summary,
    }


def naming_input(profile: dict[str, Any]) -> dict[str, Any]:
    """The dict :func:`shared.segments.segment_name` reads, from a stored profile."""
    return {"seasonality": profile["seasonality"], **profile["traits"]}
