"""Segment names from behaviour profiles, and names kept across retrains."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import given

from shared.segments import NameRules, SegmentIdState, match_clusters, resolve_names, segment_name

FLAT = [1 / 12] * 12


def profile(seasonality: list[float] = FLAT, **kwargs: float) -> dict:
    return {"seasonality": seasonality, "growth": 0.0, "volatility": 0.4, "assortment": 20.0, "activity": 1.0} | kwargs


def curve(**peaks: float) -> list[float]:
    """Flat base of 1 per month plus extra volume in named months (jan..dec)."""
    months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    return [1.0 + peaks.get(m, 0.0) for m in months]


def test_the_example_name() -> None:
    name = segment_name(profile(curve(nov=2, dec=4), growth=0.12, assortment=80))
    assert name == "festive peak · growing · wide assortment"


@pytest.mark.parametrize(
    ("seasonality", "season"),
    [
        (FLAT, "year-round"),
        ([0.0] * 12, "year-round"),
        (curve(jun=2, jul=3, aug=2), "summer peak"),
        (curve(dec=3, jan=4, feb=3), "winter peak"),  # the window wraps around the year end
        (curve(apr=3), "spring peak"),
        (curve(sep=3, oct=2), "autumn peak"),
        (curve(jul=3, dec=4), "festive & summer peaks"),
        (curve(jul=0.2), "year-round"),  # a bump too small to call a peak
    ],
)
def test_season_part(seasonality: list[float], season: str) -> None:
    assert segment_name(profile(seasonality)).split(" · ")[0] == season


def test_curve_scale_does_not_matter() -> None:
    shares = np.array(curve(jun=2, jul=3))
    assert segment_name(profile(list(shares / shares.sum()))) == segment_name(profile(list(shares * 1000)))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"growth": 0.5}, "year-round · fast-growing · mid assortment"),
        ({"growth": -0.08}, "year-round · declining · mid assortment"),
        ({"growth": -0.4, "volatility": 0.9}, "year-round · sharply declining · volatile · mid assortment"),
        ({"volatility": 0.1, "assortment": 3}, "year-round · flat · steady · narrow assortment"),
        ({"activity": 0.5}, "year-round · flat · mid assortment · intermittent"),
    ],
)
def test_trait_parts(kwargs: dict, expected: str) -> None:
    assert segment_name(profile(**kwargs)) == expected


def test_rules_are_configurable() -> None:
    assert segment_name(profile(assortment=20), NameRules(wide_assortment=15)).endswith("wide assortment")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"growth": None}, "profile.growth: must be a number"),
        ({"volatility": float("nan")}, "profile.volatility: must be finite"),
        ({"assortment": -1}, "profile.assortment: must be >= 0"),
        ({"activity": 1.5}, r"profile.activity: must be in \[0, 1\]"),
        ({"seasonality": [1.0] * 11}, "profile.seasonality: expected 12 monthly values, got 11"),
        ({"seasonality": "monthly"}, "profile.seasonality: expected 12 monthly values, got str"),
        ({"seasonality": [1.0] * 11 + [-1.0]}, "profile.seasonality: values must be >= 0"),
        ({"growth": True}, "profile.growth: must be a number"),
    ],
)
def test_bad_profile_names_field(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        segment_name(profile() | bad)
    with pytest.raises(ValueError, match=r"profile\.activity: missing"):
        segment_name({k: v for k, v in profile().items() if k != "activity"})


@given(
    seasonality=st.lists(st.floats(0, 1e6), min_size=12, max_size=12),
    growth=st.floats(-1, 10), volatility=st.floats(0, 5), assortment=st.floats(0, 1e4), activity=st.floats(0, 1),
)
def test_any_valid_profile_gets_a_name_of_known_parts(seasonality: list[float], growth: float, volatility: float,
                                                      assortment: float, activity: float) -> None:
    parts = segment_name(profile(seasonality, growth=growth, volatility=volatility, assortment=assortment,
                                 activity=activity)).split(" · ")
    assert parts[0] == "year-round" or parts[0].endswith(("peak", "peaks"))
    assert parts[1] in {"fast-growing", "growing", "flat", "declining", "sharply declining"}
    assert any(p.endswith("assortment") for p in parts) and 3 <= len(parts) <= 5


def test_resolve_names_keeps_continued_names_and_disambiguates_new_ones() -> None:
    prev = pd.Series({i: "seg-0001" if i < 50 else "seg-0002" for i in range(80)}, dtype=object)
    labels = pd.Series({**{i: 0 for i in range(50)}, **{i: 1 for i in range(100, 130)},
                        **{i: 2 for i in range(200, 220)}}, dtype=np.int64)
    result = match_clusters(prev, labels, SegmentIdState(3))
    assert result.cluster_to_segment == {0: "seg-0001", 1: "seg-0003", 2: "seg-0004"}
    festive = profile(curve(dec=4), growth=0.12, assortment=80)
    names = resolve_names(
        result,
        previous_names={"seg-0001": "festive peak · growing · wide assortment", "seg-0002": "old name"},
        profiles={"seg-0001": profile(), "seg-0003": festive, "seg-0004": festive},
    )
    assert names == {
        "seg-0001": "festive peak · growing · wide assortment",  # kept although its profile now reads otherwise
        "seg-0003": "festive peak · growing · wide assortment (2)",
        "seg-0004": "festive peak · growing · wide assortment (3)",
    }
    with pytest.raises(ValueError, match="profiles: no profile for new segment 'seg-0004'"):
        resolve_names(result, {}, {"seg-0001": profile(), "seg-0003": festive})
    with pytest.raises(ValueError, match=r"profiles\['seg-0003'\]: profile.growth: missing"):
        resolve_names(result, {}, {"seg-0001": profile(), "seg-0003": {"seasonality": FLAT}, "seg-0004": festive})
    # a continued segment without a stored name is named from its profile
    assert resolve_names(result, {}, {"seg-0001": profile(), "seg-0003": festive, "seg-0004": festive})[
        "seg-0001"] == "year-round · flat · mid assortment"
