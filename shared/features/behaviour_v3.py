"""``behaviour-v3``: ``behaviour-v2``'s size-free behaviour, weighted towards the shop's recent months.

A shop that changes behaviour should look like its new behaviour once the new behaviour dominates its recent
history; ``behaviour-v2`` weighs five years alike, so two old years keep a switched shop in its old archetype for
years. Here every month of the shop's history carries the weight ``2 ** (-age / HALF_LIFE)``, ``age`` counted in
months back from the SHOP's own last active month (not the data's: the features service computes each shop from
its own monthly state only), so a month a year older weighs half as much. Exponential rather than a hard window:
nothing falls off a cliff when a month ages (no jump in a shop's features from one month to the next) and the old
months still steady the estimates of a shop that did not change (over 60 months the effective sample,
``(sum w) ** 2 / sum w ** 2``, is about 33 months). Why the half-life is 12 months, measured with
``bench/bench_stability.py`` against longer ones: the README's stability section.

Every column keeps its ``behaviour-v2`` meaning with weighted means, a weighted least-squares trend and a weighted
residual spread (:func:`shared.features.behaviour_v2.behaviour_batch`); size-free, finite and bounded alike.
"""

from __future__ import annotations

import math

import numpy as np

from shared.features.base import FeatureSet
from shared.features.behaviour_v2 import COLUMNS, DESCRIPTIONS, behaviour_batch, behaviour_one
from shared.features.monthly import ShopMonths
from shared.features.panel import Panel

HALF_LIFE = 12.0  # months: a month one year older than another carries half its weight

_RECENCY = (
    f"recency-weighted (half-life {HALF_LIFE:g} months back from the shop's last active month, so a changed shop shows "
)
DESCRIPTIONS_V3: dict[str, str] = {
    **{
        column: f"{_RECENCY}its new behaviour within a year or two): {text}"
        for column, text in DESCRIPTIONS.items()
        if column != "activity_ratio"
    },
    "activity_ratio": "weight of the active months / weight of every month from the first to the last active "
    "month, in (0, 1]: the recent share of months with sales (a kiosk that became regular shows it within a year)",
}


class BehaviourV3(FeatureSet):
    """``behaviour-v2``'s 18 size-free columns with exponential recency weights (half-life ``half_life`` months
    back from the shop's last active month)."""

    name = "behaviour-v3"
    version = 3
    columns = COLUMNS
    descriptions = DESCRIPTIONS_V3

    season_prior: float | None = None  # behaviour-v4 shrinks the season (see shrink_season)

    def __init__(self, half_life: float = HALF_LIFE) -> None:
        self.half_life = float(half_life)
        self._rate = math.log(2.0) / self.half_life  # per month

    def _span_weight(self, spanned: np.ndarray | float) -> np.ndarray | float:
        """Sum of ``2 ** (-k / half_life)`` for k = 0 .. spanned - 1 (geometric series, in closed form)."""
        return np.expm1(-self._rate * spanned) / math.expm1(-self._rate)

    def _batch(self, panel: Panel) -> np.ndarray:
        last = panel.period[panel.starts + panel.counts - 1]
        w = np.exp(-self._rate * (last[panel.code] - panel.period))
        spanned = (last - panel.period[panel.starts] + 1).astype(np.float64)
        return behaviour_batch(panel, w, self._span_weight(spanned), self.season_prior)

    def compute_one(self, shop: ShopMonths) -> np.ndarray:
        last = shop.period[-1]
        w = np.exp(-self._rate * (last - shop.period))
        return behaviour_one(shop, w, float(self._span_weight(float(last - shop.period[0] + 1))), self.season_prior)
