"""behaviour-v2 and behaviour-v3 measure what their docstrings say, are size-free, bounded, and defined on every
edge case; behaviour-v3 follows a shop's recent months."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import RobustScaler

from shared.data.generator import generate_frames
from shared.features import EligibilityRule, FeatureSet, ShopMonths, build_features, get_feature_set, monthly_table
from shared.features.behaviour_v3 import HALF_LIFE, BehaviourV3
from shared.features.behaviour_v4 import SEASON_PRIOR, BehaviourV4

V2 = get_feature_set("behaviour-v2")
V3 = get_feature_set("behaviour-v3")
V4 = get_feature_set("behaviour-v4")
BEHAVIOUR = [V2, V3, V4]
COL = {name: i for i, name in enumerate(V2.columns)}
SHARES = slice(COL["season_share_1"], COL["season_share_12"] + 1)


def make_shop(
    qty: np.ndarray,
    uniq: np.ndarray | float = 5.0,
    start: tuple[int, int] = (2019, 1),
    active: np.ndarray | None = None,
) -> ShopMonths:
    """Consecutive months from ``start`` (only those where ``active``), with the given volumes."""
    qty = np.asarray(qty, dtype=float)
    period = start[0] * 12 + start[1] - 1 + np.arange(len(qty))
    keep = np.ones(len(qty), bool) if active is None else np.asarray(active, bool)
    uniq = np.broadcast_to(np.asarray(uniq, dtype=float), qty.shape)
    return ShopMonths(period[keep] // 12, period[keep] % 12 + 1, qty[keep], uniq[keep])


def features(shop: ShopMonths, fs: FeatureSet = V2) -> dict[str, float]:
    return dict(zip(fs.columns, fs.compute_one(shop), strict=True))


def test_columns_are_compact_and_documented() -> None:
    assert 16 <= len(V2.columns) <= 22 and len(set(V2.columns)) == len(V2.columns)
    assert V2.name == "behaviour-v2" and V2.version == 2


def test_season_shares_are_the_planted_shape() -> None:
    season = 1 + 0.8 * np.exp(-0.5 * ((np.arange(12) - 6) / 1.3) ** 2)
    qty = 250 * np.tile(season, 4)
    got = V2.compute_one(make_shop(qty))
    np.testing.assert_allclose(got[SHARES], season / season.sum(), rtol=1e-12)
    flat = features(make_shop(np.full(36, 40.0)))
    assert flat["season_entropy"] == pytest.approx(1.0)
    assert features(make_shop(qty))["season_entropy"] < flat["season_entropy"]


@pytest.mark.parametrize("growth", [-0.3, 0.0, 0.35])
def test_sales_trend_is_yearly_log_growth_and_ignores_the_season(growth: float) -> None:
    t = np.arange(60)
    season = np.tile([1, 1, 1, 1, 1.4, 2, 2.4, 2, 1.4, 1, 1, 1], 5)
    got = features(make_shop(300 * season * (1 + growth) ** (t / 12)))
    assert got["sales_trend"] == pytest.approx(np.log1p(growth), abs=1e-9)
    assert got["sales_volatility"] == pytest.approx(0.0, abs=1e-9)  # season and trend explain everything


def test_volatility_measures_the_irregular_part() -> None:
    rng = np.random.default_rng(3)
    base = 500 * np.tile(1 + 0.3 * np.sin(np.arange(12)), 5)
    vols = []
    for sigma in (0.05, 0.2, 0.5):
        noisy = base * np.exp(sigma * rng.standard_normal(60))
        vols.append(features(make_shop(noisy))["sales_volatility"])
        assert vols[-1] == pytest.approx(sigma, rel=0.3)
    assert vols == sorted(vols)


def test_assortment_breadth_trend_and_activity() -> None:
    t = np.arange(48)
    widening = features(make_shop(np.full(48, 100.0), uniq=4 * 1.2 ** (t / 12)))
    assert widening["assortment_trend"] == pytest.approx(np.log(1.2), rel=1e-9)
    assert widening["assortment_breadth"] == pytest.approx(np.log1p(np.mean(4 * 1.2 ** (t / 12))))
    active = np.zeros(40, bool)
    active[::2] = True  # every other month: 20 active of 39 spanned
    assert features(make_shop(np.full(40, 10.0), active=active))["activity_ratio"] == pytest.approx(20 / 39)


def test_one_month_and_zero_volume_are_defined() -> None:
    one = features(make_shop([80.0], uniq=3.0, start=(2021, 5)))
    assert one["season_share_5"] == 1.0 and sum(one[f"season_share_{m}"] for m in range(1, 13)) == 1.0
    assert one["season_entropy"] == 0.0 and one["sales_trend"] == 0.0 and one["sales_volatility"] == 0.0
    assert one["activity_ratio"] == 1.0 and one["assortment_breadth"] == pytest.approx(np.log(4.0))
    zero = V2.compute_one(make_shop(np.zeros(30)))
    assert np.isfinite(zero).all()
    assert (zero[SHARES] == 0).all() and features(make_shop(np.zeros(30)))["sales_trend"] == 0.0


MONTHS = st.lists(st.tuples(st.integers(2016, 2023), st.integers(1, 12)), min_size=1, max_size=60, unique=True)


@pytest.mark.parametrize("fs", BEHAVIOUR, ids=lambda fs: fs.name)
@settings(max_examples=100, deadline=None)
@given(months=MONTHS, data=st.data(), factor=st.sampled_from([1e-3, 0.37, 7.0, 1e4]))
def test_size_free_and_bounded(fs, months, data, factor) -> None:
    """Multiplying a shop's volumes by any factor changes nothing; every value stays in its range."""
    n = len(months)
    qty = np.array(data.draw(st.lists(st.floats(0, 1e5, allow_subnormal=False), min_size=n, max_size=n)))
    uniq = np.array(data.draw(st.lists(st.integers(1, 40), min_size=n, max_size=n)), dtype=float)
    year, month = np.array(months).T
    base = fs.compute_one(ShopMonths(year, month, qty, uniq))
    scaled = fs.compute_one(ShopMonths(year, month, qty * factor, uniq))
    np.testing.assert_allclose(scaled, base, rtol=1e-9, atol=1e-9)
    assert np.isfinite(base).all()
    shares = base[SHARES]
    assert ((shares >= 0) & (shares <= 1)).all() and (shares.sum() == pytest.approx(1.0) or shares.sum() == 0)
    f = dict(zip(fs.columns, base, strict=True))
    assert 0 <= f["season_entropy"] <= 1 + 1e-12 and 0 < f["activity_ratio"] <= 1
    assert abs(f["sales_trend"]) <= 3 and abs(f["assortment_trend"]) <= 3 and 0 <= f["sales_volatility"] <= 5


@pytest.mark.parametrize("name", ["behaviour-v2", "behaviour-v3", "behaviour-v4"])
def test_batch_is_size_free_across_shops(name: str) -> None:
    """In one batch, a shop and a 1000x bigger copy of it get identical rows."""
    rng = np.random.default_rng(0)
    sales = pd.DataFrame(
        {
            "shop_id": "small",
            "product_id": rng.integers(0, 6, 300),
            "year": rng.integers(2019, 2023, 300),
            "month": rng.integers(1, 13, 300),
            "sales_qty": rng.integers(0, 50, 300).astype(float),
        }
    )
    big = sales.assign(shop_id="big", sales_qty=sales["sales_qty"] * 1000)
    out = get_feature_set(name).compute_batch(monthly_table(pd.concat([sales, big])))
    np.testing.assert_allclose(out.loc["big"].to_numpy(), out.loc["small"].to_numpy(), rtol=1e-9, atol=1e-12)
    seed = get_feature_set("seed-v1").compute_batch(monthly_table(pd.concat([sales, big])))
    assert seed.loc["big", "avg_sales_qty_month_1"] > 100 * seed.loc["small", "avg_sales_qty_month_1"]


@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Generated shops with planted archetypes: (sales, archetype per shop, log mean monthly volume per shop)."""
    data = generate_frames(retailers=1200, years=4, seed=5)
    truth = data.truth.set_index("shop_id")["archetype"]
    volume = monthly_table(data.sales).groupby("shop_id")["monthly_sales_qty"].mean()
    return data.sales, truth, np.log(volume)


def _eligible_features(sales: pd.DataFrame, name: str) -> pd.DataFrame:
    out = build_features(sales, name, EligibilityRule())
    return out.loc[out["eligible"], list(get_feature_set(name).columns)]


def _max_size_correlation(features: pd.DataFrame, truth: pd.Series, log_size: pd.Series) -> pd.Series:
    """Per column: the largest |Spearman rho| with log size inside any one archetype."""
    labels, size = truth.loc[features.index], log_size.loc[features.index]
    per_archetype = [
        features[labels == a].corrwith(size[labels == a], method="spearman").abs() for a in labels.unique()
    ]
    return pd.concat(per_archetype, axis=1).fillna(0).max(axis=1)


@pytest.mark.parametrize("name", ["behaviour-v2", "behaviour-v3", "behaviour-v4"])
def test_planted_shop_size_does_not_drive_behaviour(planted, name: str) -> None:
    sales, truth, log_size = planted
    v2 = _max_size_correlation(_eligible_features(sales, name), truth, log_size)
    seed = _max_size_correlation(_eligible_features(sales, "seed-v1"), truth, log_size)
    assert seed.max() > 0.9  # the seed's volume columns are shop size
    # what remains in v2 is the data's own floor of 1 unit per product, which flattens tiny shops' seasons
    assert v2.max() < 0.45 and v2.median() < 0.25


@pytest.mark.parametrize("name", ["behaviour-v2", "behaviour-v3", "behaviour-v4"])
def test_planted_archetypes_are_separable(planted, name: str) -> None:
    sales, truth, _ = planted
    features = _eligible_features(sales, name)
    model = make_pipeline(RobustScaler(), KNeighborsClassifier(n_neighbors=15))
    accuracy = cross_val_score(model, features.to_numpy(), truth.loc[features.index].to_numpy(), cv=5).mean()
    assert accuracy >= 0.95


# --- behaviour-v3: recency ------------------------------------------------------------------------------------

SUMMER = 1 + 1.4 * np.exp(-0.5 * ((np.arange(12) - 6) / 1.3) ** 2)
FESTIVE = 1 + 2.5 * np.exp(-0.5 * ((np.arange(12) - 11) / 0.9) ** 2)


def test_v3_is_a_named_version_of_the_v2_columns() -> None:
    assert V3.name == "behaviour-v3" and V3.version == 3 and V3.columns == V2.columns
    assert f"half-life {HALF_LIFE:g} months" in V3.descriptions["sales_trend"]


def test_v3_weights_halve_every_half_life_back_from_the_shops_last_month() -> None:
    """Two months 12 months apart in one calendar month: the season share is the weighted mean (weights 1/2, 1)."""
    shop = make_shop(np.r_[30.0, np.full(11, 0.0), 90.0], start=(2020, 3), active=np.r_[True, [False] * 11, True])
    got = features(shop, V3)
    assert got["season_share_3"] == 1.0  # one calendar month: the share is 1 whatever the weights
    mean_q = (0.5 * 30 + 1.0 * 90) / 1.5
    # relative volumes 30 / mean_q and 90 / mean_q: the weighted trend is their log ratio per year (a 2-point fit)
    assert got["sales_trend"] == pytest.approx(np.log(90 / mean_q) - np.log(30 / mean_q), rel=1e-12)
    weights = 0.5 ** (np.arange(13)[::-1] / 12)  # every spanned month, the last one weighing 1
    assert got["activity_ratio"] == pytest.approx((0.5 + 1.0) / weights.sum(), rel=1e-12)


def test_v3_shows_a_switched_season_where_v2_still_blends() -> None:
    """24 months of summer peak, then 36 of festive peak: v3's shape is mostly the new one."""
    qty = 200 * np.r_[np.tile(SUMMER, 2), np.tile(FESTIVE, 3)]
    v2, v3 = V2.compute_one(make_shop(qty))[SHARES], V3.compute_one(make_shop(qty))[SHARES]
    festive = FESTIVE / FESTIVE.sum()
    assert np.abs(v3 - festive).sum() < 0.5 * np.abs(v2 - festive).sum()
    assert np.abs(v3 - festive).sum() < 0.1
    assert v3.argmax() == 11 and v3[6] < v2[6]


def test_v3_trend_follows_the_recent_regime() -> None:
    """Growing 35% a year for two years, then declining 25% a year for three: v3 reads most of the decline (the old
    years, light but far from the recent ones, still pull a single slope), v2 about a quarter of it."""
    t = np.arange(60)
    log_level = np.where(t < 24, np.log(1.35) * t / 12, np.log(1.35) * 2 + np.log(0.75) * (t - 24) / 12)
    qty = 400 * np.exp(log_level)
    v2, v3 = features(make_shop(qty)), features(make_shop(qty), V3)
    assert v3["sales_trend"] < v2["sales_trend"] < np.log(1.35)
    assert v3["sales_trend"] < 0.6 * np.log(0.75) and v2["sales_trend"] > 0.3 * np.log(0.75)


def test_v3_activity_follows_a_kiosk_that_became_regular() -> None:
    active = np.r_[np.arange(36) % 2 == 0, np.ones(24, bool)]
    v2, v3 = features(make_shop(np.full(60, 20.0), active=active)), features(make_shop(np.full(60, 20.0)), V3)
    v3_kiosk = features(make_shop(np.full(60, 20.0), active=active), V3)
    assert v2["activity_ratio"] == pytest.approx(42 / 60) and v3["activity_ratio"] == pytest.approx(1.0)
    assert v2["activity_ratio"] < v3_kiosk["activity_ratio"] < 1.0


def test_v3_equals_v2_on_a_shop_that_never_changed() -> None:
    """Exact season and trend: both fits are exact, so the weights change neither trend nor (zero) volatility."""
    t = np.arange(48)
    qty = 300 * np.tile(SUMMER, 4) * 1.2 ** (t / 12)
    v2, v3 = features(make_shop(qty, uniq=6.0)), features(make_shop(qty, uniq=6.0), V3)
    for column in ("sales_trend", "assortment_trend", "sales_volatility", "assortment_breadth", "activity_ratio"):
        assert v3[column] == pytest.approx(v2[column], abs=1e-9), column


def test_v3_is_relative_to_the_shops_own_last_month() -> None:
    """Shifting a shop's whole history by whole years changes nothing: no global calendar in the weights."""
    rng = np.random.default_rng(4)
    qty = 100 * np.exp(0.3 * rng.standard_normal(40))
    early = V3.compute_one(make_shop(qty, start=(2016, 2)))
    late = V3.compute_one(make_shop(qty, start=(2021, 2)))
    np.testing.assert_allclose(late, early, rtol=1e-12, atol=1e-12)


def test_v3_half_life_is_a_dial_between_v2_and_the_last_months() -> None:
    qty = 200 * np.r_[np.tile(SUMMER, 2), np.tile(FESTIVE, 3)]
    shop = make_shop(qty)
    dec = [BehaviourV3(h).compute_one(shop)[SHARES][11] for h in (1e6, 24.0, 12.0, 6.0)]
    assert dec == sorted(dec)
    np.testing.assert_allclose(BehaviourV3(1e9).compute_one(shop), V2.compute_one(shop), rtol=1e-6, atol=1e-6)


LONG_MONTHS = st.lists(st.tuples(st.integers(1990, 2025), st.integers(1, 12)), min_size=1, max_size=80, unique=True)


@settings(max_examples=150, deadline=None)
@pytest.mark.parametrize("fs", [V3, V4], ids=["v3", "v4"])
@given(shops=st.lists(st.tuples(LONG_MONTHS, st.integers(0, 2**32 - 1)), min_size=1, max_size=4))
def test_recency_sets_batch_equals_one_on_long_histories(fs: FeatureSet, shops) -> None:
    """Batch and per-shop v3 and v4 agree to 1e-9 for any shops (zeros, gaps), also when decades of history make
    old weights tiny."""
    rows = []
    for i, (months, seed) in enumerate(shops):
        rng = np.random.default_rng(seed)
        qty = np.where(rng.random(len(months)) < 0.15, 0.0, rng.lognormal(3, 1.5, len(months)).round())
        uniq = rng.integers(0, 30, len(months))
        rows += [(f"s{i}", y, m, q, u) for (y, m), q, u in zip(months, qty, uniq, strict=True)]
    monthly = pd.DataFrame(rows, columns=["shop_id", "year", "month", "monthly_sales_qty", "monthly_unique_products"])
    batch = fs.compute_batch(monthly)
    assert np.isfinite(batch.to_numpy()).all()
    for shop_id, frame in monthly.groupby("shop_id"):
        one = fs.compute_one(ShopMonths.from_frame(frame))
        np.testing.assert_allclose(one, batch.loc[shop_id].to_numpy(), rtol=1e-9, atol=1e-9)


# --- behaviour-v4: the season weighed by its reliability ------------------------------------------------------------


def _season_spread(shares: np.ndarray) -> float:
    """How far a shop's 12 shares lie from a flat year (max |share - 1/12|)."""
    return float(np.abs(shares - 1 / 12).max())


def test_v4_is_v3_with_only_the_season_changed() -> None:
    assert V4.name == "behaviour-v4" and V4.version == 4 and V4.columns == V3.columns
    assert f"tau = {SEASON_PRIOR:g}" in V4.descriptions["season_share_7"]
    rng = np.random.default_rng(3)
    shop = make_shop(rng.lognormal(4, 0.4, 48))
    v3, v4 = V3.compute_one(shop), V4.compute_one(shop)
    np.testing.assert_array_equal(v3[COL["sales_trend"]:], v4[COL["sales_trend"]:])
    assert not np.allclose(v3[SHARES], v4[SHARES])


def test_v4_keeps_a_steady_shops_season_and_fades_a_volatile_shops_chance_peaks() -> None:
    """A planted x2 summer with 3% noise keeps its peak (within 2%); pure 45% noise (no season at all) looks far
    flatter in v4 than in v3 (about half as far from flat): each month's mean of 4 noisy months is weighed by its
    reliability."""
    rng = np.random.default_rng(11)
    season = np.tile(1 + 1.0 * np.exp(-0.5 * ((np.arange(12) - 6) / 1.3) ** 2), 4)
    steady = make_shop(300 * season * rng.lognormal(0, 0.03, 48))
    assert features(steady, V4)["season_share_7"] == pytest.approx(features(steady, V3)["season_share_7"], rel=0.02)
    spreads = []
    for seed in range(20):
        noisy = make_shop(300 * np.random.default_rng(seed).lognormal(0, 0.45, 48))
        spreads.append((_season_spread(V3.compute_one(noisy)[SHARES]), _season_spread(V4.compute_one(noisy)[SHARES])))
    v3_spread, v4_spread = np.mean(spreads, axis=0)
    assert v4_spread < 0.6 * v3_spread  # f is about 0.45 here: tau^2 n_eff / (tau^2 n_eff + 0.45^2), n_eff 2.65


def test_v4_counts_a_month_never_seen_as_an_average_month() -> None:
    active = np.ones(36, bool)
    active[[1, 13, 25]] = False  # never a February
    got = features(make_shop(np.full(36, 40.0), active=active), V4)
    assert got["season_share_2"] == pytest.approx(1 / 12) and features(make_shop(np.full(36, 40.0), active=active),
                                                                      V3)["season_share_2"] == 0.0


def test_v4_without_a_prior_is_v3() -> None:
    rng = np.random.default_rng(5)
    shop = make_shop(rng.lognormal(3, 0.5, 40), active=rng.random(40) < 0.7)
    plain = BehaviourV4()
    plain.season_prior = None
    np.testing.assert_array_equal(plain.compute_one(shop), V3.compute_one(shop))
