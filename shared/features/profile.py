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


def data_profile(panel: Panel, rule: EligibilityRule) -> dict[str, Any]:
    """Retailers, eligible, months of history (first to last active month), active-month share, distinct
    products per active month (quantiles over retailers), and how many each eligibility criterion dropped."""
    eligible = rule.eligible(panel).to_numpy()
    if panel.n_shops == 0:
        return {"retailers": 0, "eligible": 0}
    last = panel.starts + panel.counts - 1
    span = panel.period[last] - panel.period[panel.starts] + 1
    short = panel.counts < 12 * rule.min_tenure_years
    sparse = rule.active_months_per_year(panel) < rule.min_avg_active_months_per_year
    products = panel.shop_sum(panel.uniq) / panel.counts
    return {
        "retailers": int(panel.n_shops),
        "eligible": int(eligible.sum()),
        "months_of_history": _quantiles(span.astype(float), 1),
        "active_month_share": _quantiles(panel.counts / span),
        "products_per_active_month": _quantiles(products, 2),
        "dropped": {
            "short_history": int(short.sum()),
            "low_activity": int((sparse & ~short).sum()),
        },
        "rule": {"min_tenure_years": rule.min_tenure_years,
                 "min_avg_active_months_per_year": rule.min_avg_active_months_per_year,
                 "partial_years": rule.partial_years},
    }
