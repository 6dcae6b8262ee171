"""A profile of the data before training: how much history and activity the retailers have, and who was dropped."""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.features.eligibility import EligibilityRule
from shared.features.panel import Panel

QUANTILES = (0.1, 0.5, 0.9)


def _quantiles(values: np.ndarray, digits: int = 3) -> dict[str, float]:
    if values.size == 0:
        return {f"p{int(q * 100)}": 0.0 for q in QUANTILES}
    return {f"p{int(q * 100)}": round(float(np.quantile(values, q)), digits) for q in QUANTILES}


def shop_profile(panel: Panel, rule: EligibilityRule) -> dict[str, np.ndarray]:
    """Per shop (``panel`` order): eligible, months of history, active months, active months per year (as the
    rule counts years), distinct products per active month; what :func:`profile_summary` reduces (so panels of
    disjoint shops can be profiled apart)."""
    last = panel.starts + panel.counts - 1
    return {
        "eligible": rule.eligible(panel).to_numpy(),
        "span": panel.period[last] - panel.period[panel.starts] + 1,
        "counts": panel.counts,
        "per_year": rule.active_months_per_year(panel),
        "products": panel.shop_sum(panel.uniq) / panel.counts,
    }


def profile_summary(shops: dict[str, np.ndarray], rule: EligibilityRule) -> dict[str, Any]:
    """The profile of the shops described by :func:`shop_profile` (arrays in any shop order)."""
    n_shops = len(shops["counts"])
    if n_shops == 0:
        return {"retailers": 0, "eligible": 0}
    counts, span = shops["counts"], shops["span"]
    short = counts < 12 * rule.min_tenure_years
    sparse = shops["per_year"] < rule.min_avg_active_months_per_year
    return {
        "retailers": int(n_shops),
        "eligible": int(shops["eligible"].sum()),
        "months_of_history": _quantiles(span.astype(float), 1),
        "active_month_share": _quantiles(counts / span),
        "products_per_active_month": _quantiles(shops["products"], 2),
        "dropped": {
            "short_history": int(short.sum()),
            "low_activity": int((sparse & ~short).sum()),
        },
        "rule": {"min_tenure_years": rule.min_tenure_years,
                 "min_avg_active_months_per_year": rule.min_avg_active_months_per_year,
                 "partial_years": rule.partial_years},
    }


def data_profile(panel: Panel, rule: EligibilityRule) -> dict[str, Any]:
    """Retailers, eligible, months of history (first to last active month), active-month share, distinct
    products per active month (quantiles over retailers), and how many each eligibility criterion dropped."""
    return profile_summary(shop_profile(panel, rule), rule)
