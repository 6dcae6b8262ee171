"""Descriptive segment names from a segment's behaviour profile, e.g. "festive peak · growing · wide assortment".

A *profile* is a dict of the segment's mean behaviour (means over its member retailers):

- ``seasonality``: 12 numbers >= 0, the share of a year's volume sold in each calendar month, January first
  (normalised here, so raw monthly volumes work too; all zero reads as flat).
- ``growth``: median year-over-year sales growth as a fraction (0.12 = +12 % a year).
- ``volatility``: coefficient of variation of monthly sales volume (std / mean, >= 0).
- ``assortment``: mean number of distinct products sold per active month (>= 0).
- ``activity``: share of months with any sales over the retailer's observed span, in [0, 1].

A name is the season shape, the trend, then the assortment, with "volatile"/"steady" and "intermittent" only
when notable; parts are joined with " · ". Thresholds live in :class:`NameRules`. Names stay while a segment
continues (:func:`resolve_names`); only new segments are named, duplicates get a " (2)", " (3)" suffix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.segments.lineage import MatchResult, segment_sort_key

PROFILE_FIELDS = ("seasonality", "growth", "volatility", "assortment", "activity")
SEPARATOR = " · "
# Season of a peak by the centre month of its window: November and December are "festive".
_SEASON_BY_CENTRE = {11: "festive", 12: "festive", 1: "winter", 2: "winter", 3: "spring", 4: "spring",
                     5: "spring", 6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn"}


@dataclass(frozen=True)
class NameRules:
    """Thresholds of the name parts. A 3-month window (centre weighted 1, neighbours 0.5) is a *peak* when it
    holds at least ``peak_ratio`` times what a flat year puts there; a second peak, centred at least 3 months
    from the first, needs ``second_peak_ratio`` of the first one's weight too."""

    peak_ratio: float = 1.25
    second_peak_ratio: float = 0.8
    fast_growth: float = 0.30
    growth: float = 0.05
    volatile: float = 0.6
    steady: float = 0.2
    narrow_assortment: float = 10.0
    wide_assortment: float = 50.0
    intermittent_activity: float = 0.75


def segment_name(profile: Mapping[str, Any], rules: NameRules | None = None) -> str:
    """The descriptive name of one segment profile (see the module docstring for the profile dict)."""
    rules = rules or NameRules()
    curve, growth, volatility, assortment, activity = _validate_profile(profile)
    parts = [_season(curve, rules)]
    if growth >= rules.fast_growth:
        parts.append("fast-growing")
    elif growth >= rules.growth:
        parts.append("growing")
    elif growth <= -rules.fast_growth:
        parts.append("sharply declining")
    elif growth <= -rules.growth:
        parts.append("declining")
    else:
        parts.append("flat")
    if volatility >= rules.volatile:
        parts.append("volatile")
    elif volatility <= rules.steady:
        parts.append("steady")
    if assortment < rules.narrow_assortment:
        parts.append("narrow assortment")
    elif assortment >= rules.wide_assortment:
        parts.append("wide assortment")
    else:
        parts.append("mid assortment")
    if activity < rules.intermittent_activity:
        parts.append("intermittent")
    return SEPARATOR.join(parts)


def resolve_names(result: MatchResult, previous_names: Mapping[str, str], profiles: Mapping[str, Mapping[str, Any]],
                  rules: NameRules | None = None) -> dict[str, str]:
    """Names of every segment of ``result``: a continued segment keeps its name from ``previous_names``; other
    segments are named from ``profiles`` (keyed by segment id), in id order, with a " (n)" suffix when the
    name is already taken."""
    segments = sorted(set(result.cluster_to_segment.values()), key=segment_sort_key)
    names = {s: previous_names[s] for s in segments if s in result.continued_segments and s in previous_names}
    taken = set(names.values())
    for segment in segments:
        if segment in names:
            continue
        if segment not in profiles:
            raise ValueError(f"profiles: no profile for new segment {segment!r}")
        try:
            base = segment_name(profiles[segment], rules)
        except ValueError as exc:
            raise ValueError(f"profiles[{segment!r}]: {exc}") from None
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base} ({n})"
        names[segment] = name
        taken.add(name)
    return {s: names[s] for s in segments}


def _season(curve: np.ndarray, rules: NameRules) -> str:
    """"<season> peak", "<season> & <season> peaks" or "year-round" from a 12-month share curve."""
    total = curve.sum()
    if total <= 0:
        return "year-round"
    shares = curve / total
    # 3-month window centred on each month, the centre counting double so a one-month spike names its own month
    windows = shares + 0.5 * (np.roll(shares, 1) + np.roll(shares, -1))
    threshold = rules.peak_ratio * 2 / 12
    first = int(np.argmax(windows))
    if windows[first] < threshold:
        return "year-round"
    distance = np.abs((np.arange(12) - first + 6) % 12 - 6)
    candidates = np.where((distance >= 3) & (windows >= max(threshold, rules.second_peak_ratio * windows[first])),
                          windows, -1.0)
    second = int(np.argmax(candidates))
    first_name = _SEASON_BY_CENTRE[first + 1]
    if candidates[second] < 0 or _SEASON_BY_CENTRE[second + 1] == first_name:
        return f"{first_name} peak"
    return f"{first_name} & {_SEASON_BY_CENTRE[second + 1]} peaks"


def _validate_profile(profile: Mapping[str, Any]) -> tuple[np.ndarray, float, float, float, float]:
    if not isinstance(profile, Mapping):
        raise ValueError(f"profile: must be a dict with {PROFILE_FIELDS}, got {type(profile).__name__}")
    missing = [f for f in PROFILE_FIELDS if f not in profile]
    if missing:
        raise ValueError(f"profile.{missing[0]}: missing")
    raw = profile["seasonality"]
    if isinstance(raw, str | bytes | Mapping) or not hasattr(raw, "__len__") or len(raw) != 12:
        got = len(raw) if hasattr(raw, "__len__") and not isinstance(raw, str | bytes) else type(raw).__name__
        raise ValueError(f"profile.seasonality: expected 12 monthly values, got {got}")
    curve = np.array([_number(v, "seasonality") for v in raw], dtype=float)
    if (curve < 0).any():
        raise ValueError(f"profile.seasonality: values must be >= 0, got {curve.min()}")
    numbers = [_number(profile[f], f) for f in PROFILE_FIELDS[1:]]
    for name, value in zip(PROFILE_FIELDS[2:4], numbers[1:3], strict=True):
        if value < 0:
            raise ValueError(f"profile.{name}: must be >= 0, got {value}")
    if not 0 <= numbers[3] <= 1:
        raise ValueError(f"profile.activity: must be in [0, 1], got {numbers[3]}")
    return curve, *numbers


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"profile.{field}: must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"profile.{field}: must be finite, got {value!r}")
    return float(value)
