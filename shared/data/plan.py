"""Shop-level plan of a synthetic data set: archetype, size, tenure, gaps and drift of every shop.

Tenure mix of the base population (documented in ``generate``'s help):

* 73% trade over the whole span;
* 12% are late joiners (open at a random month, at least ~18 months before the end);
* 8% churn (close at a random month, at least ~18 months after the start);
* 7% are short-lived (2-10 months): never eligible;
* 10% of the others close for 1-4 months once (a gap).

Drift (``drift_fraction`` F, ``drift_month``): F of the eligible-looking shops (12+ months of tenure before the
drift month, still open at it) take another archetype from the drift month on, and round(F x retailers) new
shops open at the drift month.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.data.archetypes import SHARES, BehaviourParams, draw_behaviour

SIZE_MEDIAN = 150.0  # median monthly units of a shop
SIZE_SIGMA = 1.15  # log-normal sigma of shop size, the same inside every archetype
LATE, CHURN, SHORT, GAP = 0.12, 0.08, 0.07, 0.10
NO_CHANGE = np.iinfo(np.int32).max
MIXES = ("default", "uniform", "skewed")


@dataclass(frozen=True)
class World:
    """Options that make the synthetic world harder than the default (which they leave byte-identical).

    ``months``: keep only the last ``months`` months of the span (fewer months of history); ``activity_scale``:
    multiplies every shop's chance of an active month (sparse buyers below 1); ``breadth_scale``: multiplies the
    products per active month; ``mix``: archetype shares, "default" (the table in ``archetypes``), "uniform",
    "skewed" (half the shops in the first archetype), or six comma-separated weights.
    """

    months: int | None = None
    activity_scale: float = 1.0
    breadth_scale: float = 1.0
    mix: str = "default"

    def __post_init__(self) -> None:
        if self.months is not None and (isinstance(self.months, bool) or self.months < 2):
            raise ValueError(f"months: must be an integer >= 2, got {self.months!r}")
        if not 0.0 < self.activity_scale <= 1.0:
            raise ValueError(f"activity_scale: must be in (0, 1], got {self.activity_scale!r}")
        if not 0.5 <= self.breadth_scale <= 10.0:
            raise ValueError(f"breadth_scale: must be between 0.5 and 10, got {self.breadth_scale!r}")
        self.shares()

    def shares(self) -> np.ndarray:
        """The archetype shares of this world (sum 1)."""
        k = SHARES.size
        if self.mix == "default":
            return SHARES
        if self.mix == "uniform":
            return np.full(k, 1.0 / k)
        if self.mix == "skewed":
            return np.r_[0.5, np.full(k - 1, 0.5 / (k - 1))]
        try:
            weights = np.array([float(w) for w in self.mix.split(",")])
        except ValueError:
            weights = np.zeros(0)
        if weights.size != k or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"mix: must be one of {MIXES} or {k} comma-separated non-negative weights, "
                             f"got {self.mix!r}")
        return weights / weights.sum()


@dataclass(frozen=True)
class ShopPlan:
    """One entry per shop (base population first, then the shops opened at the drift month)."""

    code: np.ndarray  # archetype index before any drift
    code_after: np.ndarray  # archetype index from change_t on, -1 without drift
    change_t: np.ndarray  # month index of the switch, NO_CHANGE without drift
    start_t: np.ndarray  # first month index of the tenure
    end_t: np.ndarray  # month index after the tenure
    gap_start: np.ndarray
    gap_end: np.ndarray  # == gap_start when the shop has no gap
    log_size: np.ndarray  # log of the shop's monthly units halfway through its tenure (before any drift)
    before: BehaviourParams
    after: BehaviourParams  # drawn for every shop, used from change_t on

    @property
    def shops(self) -> int:
        return int(self.code.size)

    def take(self, sl: slice) -> ShopPlan:
        """The plan of a contiguous block of shops."""
        def cut(params: BehaviourParams) -> BehaviourParams:
            return BehaviourParams(**{k: getattr(params, k)[sl] for k in params.__dataclass_fields__})

        arrays = {k: getattr(self, k)[sl] for k in self.__dataclass_fields__ if k not in ("before", "after")}
        return ShopPlan(**arrays, before=cut(self.before), after=cut(self.after))


def _tenure(rng: np.random.Generator, n: int, months: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kind = rng.choice(4, size=n, p=[1 - LATE - CHURN - SHORT, LATE, CHURN, SHORT])
    start = np.zeros(n, dtype=np.int64)
    end = np.full(n, months, dtype=np.int64)
    late, churn, short = kind == 1, kind == 2, kind == 3
    start[late] = rng.integers(1, max(2, months - 17), size=late.sum())
    end[churn] = rng.integers(min(18, months - 1), months, size=churn.sum())
    length = rng.integers(2, min(11, months) + 1, size=short.sum())
    start[short] = (rng.random(short.sum()) * (months - length + 1)).astype(np.int64)
    end[short] = start[short] + length
    return start, end, short


def _gaps(rng: np.random.Generator, start: np.ndarray, end: np.ndarray, short: np.ndarray):
    has_gap = (rng.random(start.size) < GAP) & ~short & (end - start >= 12)
    length = rng.integers(1, 5, size=start.size)
    gap_start = start + 1 + (rng.random(start.size) * np.maximum(end - start - length - 1, 1)).astype(np.int64)
    gap_start = np.where(has_gap, gap_start, 0)
    return gap_start, np.where(has_gap, gap_start + length, 0)


def make_plan(rng: np.random.Generator, retailers: int, months: int, drift_fraction: float = 0.0,
              drift_t: int | None = None, world: World | None = None) -> ShopPlan:
    """Draw the plan of ``retailers`` shops over ``months`` months, plus drift as described in the module doc."""
    world = world or World()
    shares = world.shares()
    k = shares.size
    code = rng.choice(k, size=retailers, p=shares)
    start, end, short = _tenure(rng, retailers, months)
    gap_start, gap_end = _gaps(rng, start, end, short)
    code_after = np.full(retailers, -1)
    change_t = np.full(retailers, NO_CHANGE, dtype=np.int64)
    if drift_t is not None and drift_fraction > 0:
        candidates = np.flatnonzero(~short & (start <= drift_t - 12) & (end > drift_t))
        switched = rng.choice(candidates, size=round(drift_fraction * candidates.size), replace=False)
        switched.sort()
        # another archetype, drawn by the shares of the remaining ones
        probs = np.tile(shares, (switched.size, 1))
        probs[np.arange(switched.size), code[switched]] = 0.0
        cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
        code_after[switched] = np.minimum((rng.random((switched.size, 1)) > cum).sum(axis=1), k - 1)
        change_t[switched] = drift_t
        new = round(drift_fraction * retailers)
        code = np.concatenate([code, rng.choice(k, size=new, p=shares)])
        code_after = np.concatenate([code_after, np.full(new, -1)])
        change_t = np.concatenate([change_t, np.full(new, NO_CHANGE)])
        start = np.concatenate([start, np.full(new, drift_t)])
        end = np.concatenate([end, np.full(new, months)])
        gap_start = np.concatenate([gap_start, np.zeros(new, dtype=np.int64)])
        gap_end = np.concatenate([gap_end, np.zeros(new, dtype=np.int64)])
    n = code.size
    log_size = np.log(SIZE_MEDIAN) + SIZE_SIGMA * rng.standard_normal(n)
    scales = {"activity_scale": world.activity_scale, "breadth_scale": world.breadth_scale}
    before = draw_behaviour(rng, code, **scales)
    after = draw_behaviour(rng, np.where(code_after >= 0, code_after, code), **scales)
    return ShopPlan(code, code_after, change_t, start, end, gap_start, gap_end, log_size, before, after)
