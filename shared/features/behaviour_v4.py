"""``behaviour-v4``: ``behaviour-v3`` with each month's seasonal share weighed by how much it can be trusted.

A month's share in v3 is the shop's average relative volume in that calendar month. For a steady shop seen in
that month every year this is its season; for a volatile shop (month-to-month noise of 40%) or a sparse one (two
active Julys in three years) it is mostly noise, and twelve noisy shares scatter such shops over the season
dimensions, where density clustering calls them noise or merges them with their neighbours. Here each month's
average is shrunk towards the flat year by its reliability (:func:`shared.features.behaviour_v2.shrink_season`):
``f = tau^2 / (tau^2 + sigma^2 / n_eff)`` with ``sigma`` the shop's own volatility (the same number as its
``sales_volatility``), ``n_eff`` the month's effective count under the recency weights and ``tau`` =
``SEASON_PRIOR``, the typical size of a month effect in relative volume. A month never seen counts as an
ordinary month (share 1/12 of a flat year) rather than zero: no evidence is no peak. Every other column is v3's.
Everything a shop's features need is still its own months, so the features service computes it incrementally.
"""

from __future__ import annotations

from shared.features.behaviour_v2 import DESCRIPTIONS
from shared.features.behaviour_v3 import DESCRIPTIONS_V3, HALF_LIFE, BehaviourV3

SEASON_PRIOR = 0.25  # typical month effect: a month 25% above or below the shop's average

_SHRUNK = (
    f"each month's average shrunk towards the flat year by its reliability tau^2 / (tau^2 + volatility^2 / "
    f"effective months seen), tau = {SEASON_PRIOR:g}; a month never seen counts as an average month; "
)
DESCRIPTIONS_V4: dict[str, str] = {
    **DESCRIPTIONS_V3,
    **{
        column: f"{_SHRUNK}{DESCRIPTIONS_V3[column]}"
        for column in DESCRIPTIONS
        if column.startswith("season_")
    },
}


class BehaviourV4(BehaviourV3):
    """``behaviour-v3`` (recency half-life ``half_life`` months) with reliability-shrunk seasonal shares."""

    name = "behaviour-v4"
    version = 4
    descriptions = DESCRIPTIONS_V4
    season_prior = SEASON_PRIOR

    def __init__(self, half_life: float = HALF_LIFE) -> None:
        super().__init__(half_life)
