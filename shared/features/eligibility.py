"""Which shops are clustered (the seed's eligibility rule): enough tenure and enough activity per year."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shared.config import SettingsParams
from shared.features.monthly import ShopMonths
from shared.features.panel import Panel

PARTIAL_YEARS = ("prorate", "last", "count")


@dataclass(frozen=True)
class EligibilityRule(SettingsParams):
    """A shop is eligible when its active (year, month) count >= 12 x ``min_tenure_years`` and its active months
    per active year >= ``min_avg_active_months_per_year``. A month with a row counts as active, even with qty 0.
    Years without activity do not count. ``partial_years``: "last" counts the shop's last active year by the
    share of it the shop spans (up to its last active month), so a new year's first month does not drag the mean
    down; "prorate" counts the first active year the same way (from the first active month), which also admits
    late joiners with a short first year; "count" counts every active year whole (the case study's rule, the
    seed profile's)."""

    min_tenure_years: float
    min_avg_active_months_per_year: float
    partial_years: str

    def __post_init__(self) -> None:
        for name, low, high in (("min_tenure_years", 0, math.inf), ("min_avg_active_months_per_year", 0, 12)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"EligibilityRule.{name}: must be a finite number, got {value!r}")
            if not low <= value <= high:
                raise ValueError(f"EligibilityRule.{name}: must be between {low} and {high}, got {value}")
        if self.partial_years not in PARTIAL_YEARS:
            raise ValueError(f"EligibilityRule.partial_years: must be one of {PARTIAL_YEARS}, "
                             f"got {self.partial_years!r}")

    def _years(self, active_years: np.ndarray, first_month: np.ndarray, last_month: np.ndarray) -> np.ndarray:
        """How many years the active years count for (the last, or the first and last, prorated; or whole)."""
        if self.partial_years == "count":
            return active_years.astype(np.float64)
        unspanned = 12 - last_month
        if self.partial_years == "prorate":
            unspanned = unspanned + (first_month - 1)
        return active_years - unspanned / 12.0

    def _decide(self, active_months: np.ndarray, years: np.ndarray) -> np.ndarray:
        tenure_ok = active_months >= 12 * self.min_tenure_years
        return tenure_ok & (active_months / years >= self.min_avg_active_months_per_year)

    def _panel_years(self, panel: Panel) -> np.ndarray:
        ycode, _, _ = panel.years()
        active_years = np.bincount(ycode, minlength=panel.n_shops)
        last = panel.starts + panel.counts - 1
        return self._years(active_years, panel.month[panel.starts], panel.month[last])

    def active_months_per_year(self, panel: Panel) -> np.ndarray:
        """Per shop (in ``panel.shops`` order): active months per active year, as this rule counts years."""
        return panel.counts / self._panel_years(panel)

    def eligible(self, monthly: pd.DataFrame | Panel) -> pd.Series:
        """Boolean per shop (index shop_id, sorted) for a monthly table (or a ``Panel``)."""
        panel = Panel.from_monthly(monthly)
        if not panel.n_shops:
            return pd.Series(np.zeros(0, bool), index=panel.shops, name="eligible", dtype=bool)
        decided = self._decide(panel.counts, self._panel_years(panel))
        return pd.Series(decided, index=panel.shops, name="eligible", dtype=bool)

    def is_eligible(self, shop: ShopMonths) -> bool:
        """The same decision for one shop."""
        if not len(shop):
            return False
        years = self._years(np.array([len(np.unique(shop.year))]), shop.month[:1], shop.month[-1:])
        return bool(self._decide(np.array([len(shop)]), years)[0])
