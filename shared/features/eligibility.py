"""Which shops are clustered (the seed's eligibility rule): enough tenure and enough activity per year."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shared.config import SettingsParams
from shared.features.monthly import ShopMonths
from shared.features.panel import Panel


@dataclass(frozen=True)
class EligibilityRule(SettingsParams):
    """A shop is eligible when its active (year, month) count >= 12 x ``min_tenure_years`` and the mean of
    active months per active year >= ``min_avg_active_months_per_year``. A month with a row counts as active,
    even with qty 0. Years without activity do not count."""

    min_tenure_years: float
    min_avg_active_months_per_year: float

    def __post_init__(self) -> None:
        for name, low, high in (("min_tenure_years", 0, math.inf), ("min_avg_active_months_per_year", 0, 12)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"EligibilityRule.{name}: must be a finite number, got {value!r}")
            if not low <= value <= high:
                raise ValueError(f"EligibilityRule.{name}: must be between {low} and {high}, got {value}")

    def _decide(self, active_months: np.ndarray, active_years: np.ndarray) -> np.ndarray:
        tenure_ok = active_months >= 12 * self.min_tenure_years
        return tenure_ok & (active_months / active_years >= self.min_avg_active_months_per_year)

    def eligible(self, monthly: pd.DataFrame | Panel) -> pd.Series:
        """Boolean per shop (index shop_id, sorted) for a monthly table (or a ``Panel``)."""
        panel = Panel.from_monthly(monthly)
        ycode, _, _ = panel.years()
        years = np.bincount(ycode, minlength=panel.n_shops)
        decided = self._decide(panel.counts, years) if panel.n_shops else np.zeros(0, bool)
        return pd.Series(decided, index=panel.shops, name="eligible", dtype=bool)

    def is_eligible(self, shop: ShopMonths) -> bool:
        """The same decision for one shop."""
        n_years = len(np.unique(shop.year))
        return bool(self._decide(np.array([len(shop)]), np.array([n_years]))[0])
