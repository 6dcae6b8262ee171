"""The planted behavioural archetypes of the synthetic FMCG data.

Every archetype is a set of ranges; each shop draws its own values inside them, so shops of one archetype are
alike but never identical. Shop SIZE is drawn separately (log-normal, the same for every archetype), so only
size-free behaviour tells archetypes apart.

=====================  ==================  ================  ===========  ==========  ===========  =====
archetype              season (peak)       trend per year    volatility   products    activity     share
=====================  ==================  ================  ===========  ==========  ===========  =====
steady_convenience     flat                -3% .. +3%        low          2-4         continuous   24%
summer_peak            Jun-Aug, x1.8-2.4   -3% .. +5%        medium       2-4         continuous   19%
festive_peak           Nov-Dec, x2.5-3.5   -2% .. +5%        low-medium   10-16       continuous    9%
growing                flat                +25% .. +45%      medium       2.5-4.5 ^   continuous   18%
declining              flat                -35% .. -20%      high         3-6 v       ~96% months  17%
intermittent_kiosk     flat                -5% .. +5%        very high    1-2         55-80%       13%
=====================  ==================  ================  ===========  ==========  ===========  =====

* volatility = sigma of the month-to-month log-normal noise of the shop's total volume: low 0.04-0.08,
  low-medium 0.06-0.12, medium 0.08-0.15, high 0.15-0.25, very high 0.35-0.55.
* products = mean distinct products per active month (^ grows ~12% a year, v shrinks ~10% a year).
* activity = probability that a month inside the shop's tenure has any sales.
* flat shops still carry a small random seasonal wiggle (amplitude up to 10%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Range = tuple[float, float]


@dataclass(frozen=True)
class Season:
    """A seasonal bump: factor 1 + amp * gaussian(cyclic distance to centre / width), then scaled to mean 1."""

    centre: Range  # calendar month (1-12, fractional); (0, 12) means a random centre
    width: float
    amp: Range


@dataclass(frozen=True)
class Archetype:
    """One planted behaviour; every tuple is a (low, high) range a shop draws uniformly from."""

    name: str
    share: float
    season: Season
    growth: Range  # yearly volume growth
    volatility: Range  # sigma of log-normal monthly noise
    breadth: Range  # mean distinct products per active month
    breadth_growth: float  # yearly growth of the breadth
    activity: Range  # probability of an active month inside the tenure


FLAT = Season(centre=(0.0, 12.0), width=2.0, amp=(0.0, 0.1))
ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("steady_convenience", 0.24, FLAT, (-0.03, 0.03), (0.04, 0.08), (2.0, 4.0), 0.0, (1.0, 1.0)),
    Archetype("summer_peak", 0.19, Season((6.7, 7.3), 1.3, (0.8, 1.4)), (-0.03, 0.05), (0.08, 0.15), (2.0, 4.0),
              0.0, (1.0, 1.0)),
    Archetype("festive_peak", 0.09, Season((11.7, 12.0), 0.9, (1.5, 2.5)), (-0.02, 0.05), (0.06, 0.12),
              (10.0, 16.0), 0.0, (1.0, 1.0)),
    Archetype("growing", 0.18, FLAT, (0.25, 0.45), (0.08, 0.15), (2.5, 4.5), 0.12, (1.0, 1.0)),
    Archetype("declining", 0.17, FLAT, (-0.35, -0.20), (0.15, 0.25), (3.0, 6.0), -0.10, (0.92, 1.0)),
    Archetype("intermittent_kiosk", 0.13, FLAT, (-0.05, 0.05), (0.35, 0.55), (1.0, 2.0), 0.0, (0.55, 0.80)),
)
NAMES: tuple[str, ...] = tuple(a.name for a in ARCHETYPES)
SHARES = np.array([a.share for a in ARCHETYPES])
MAX_BREADTH = max(a.breadth[1] for a in ARCHETYPES)


@dataclass(frozen=True)
class BehaviourParams:
    """Per-shop behaviour drawn from each shop's archetype (arrays of one value per shop)."""

    growth: np.ndarray
    volatility: np.ndarray
    breadth: np.ndarray
    breadth_growth: np.ndarray
    activity: np.ndarray
    season: np.ndarray  # (shops, 12) factors with mean 1 over the year


def _uniform(rng: np.random.Generator, codes: np.ndarray, pick) -> np.ndarray:
    lo = np.array([pick(a)[0] for a in ARCHETYPES])[codes]
    hi = np.array([pick(a)[1] for a in ARCHETYPES])[codes]
    return lo + (hi - lo) * rng.random(codes.size)


def season_factors(centre: np.ndarray, width: np.ndarray, amp: np.ndarray) -> np.ndarray:
    """(shops, 12) multiplicative month factors, each row scaled to mean 1."""
    months = np.arange(1, 13, dtype=float)
    dist = (months[None, :] - centre[:, None] + 6.0) % 12.0 - 6.0
    factors = 1.0 + amp[:, None] * np.exp(-0.5 * (dist / width[:, None]) ** 2)
    return factors / factors.mean(axis=1, keepdims=True)


def draw_behaviour(rng: np.random.Generator, codes: np.ndarray, activity_scale: float = 1.0,
                   breadth_scale: float = 1.0) -> BehaviourParams:
    """Draw every shop's behaviour inside the ranges of its archetype (``codes`` index ARCHETYPES); the scales
    make a harder world: fewer active months (activity x scale, at least 2%) and wider assortments."""
    codes = np.asarray(codes, dtype=np.int64)
    centre = _uniform(rng, codes, lambda a: a.season.centre)
    width = np.array([a.season.width for a in ARCHETYPES])[codes]
    amp = _uniform(rng, codes, lambda a: a.season.amp)
    return BehaviourParams(
        growth=_uniform(rng, codes, lambda a: a.growth),
        volatility=_uniform(rng, codes, lambda a: a.volatility),
        breadth=_uniform(rng, codes, lambda a: a.breadth) * breadth_scale,
        breadth_growth=np.array([a.breadth_growth for a in ARCHETYPES])[codes],
        activity=np.clip(_uniform(rng, codes, lambda a: a.activity) * activity_scale, 0.02, 1.0),
        season=season_factors(centre, width, amp),
    )
