"""behaviour-v2 measures what its docstrings say, is size-free, bounded, and defined on every edge case."""

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
from shared.features import FEATURE_SETS, EligibilityRule, ShopMonths, build_features, get_feature_set, monthly_table

V2 = get_feature_set("behaviour-v2")
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


def features(shop: ShopMonths) -> dict[str, float]:
    return dict(zip(V2.columns, V2.compute_one(shop), strict=True))


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


@settings(max_examples=100, deadline=None)
@given(months=MONTHS, data=st.data(), factor=st.sampled_from([1e-3, 0.37, 7.0, 1e4]))
def test_size_free_and_bounded(months, data, factor) -> None:
    """Multiplying a shop's volumes by any factor changes nothing; every value stays in its range."""
    n = len(months)
    qty = np.array(data.draw(st.lists(st.floats(0, 1e5, allow_subnormal=False), min_size=n, max_size=n)))
    uniq = np.array(data.draw(st.lists(st.integers(1, 40), min_size=n, max_size=n)), dtype=float)
    year, month = np.array(months).T
    base = V2.compute_one(ShopMonths(year, month, qty, uniq))
    scaled = V2.compute_one(ShopMonths(year, month, qty * factor, uniq))
    np.testing.assert_allclose(scaled, base, rtol=1e-9, atol=1e-9)
    assert np.isfinite(base).all()
    shares = base[SHARES]
    assert ((shares >= 0) & (shares <= 1)).all() and (shares.sum() == pytest.approx(1.0) or shares.sum() == 0)
    f = dict(zip(V2.columns, base, strict=True))
    assert 0 <= f["season_entropy"] <= 1 + 1e-12 and 0 < f["activity_ratio"] <= 1
    assert abs(f["sales_trend"]) <= 3 and abs(f["assortment_trend"]) <= 3 and 0 <= f["sales_volatility"] <= 5


def test_batch_is_size_free_across_shops() -> None:
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
    out = FEATURE_SETS["behaviour-v2"].compute_batch(monthly_table(pd.concat([sales, big])))
    np.testing.assert_allclose(out.loc["big"].to_numpy(), out.loc["small"].to_numpy(), rtol=1e-9, atol=1e-12)
    seed = FEATURE_SETS["seed-v1"].compute_batch(monthly_table(pd.concat([sales, big])))
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


def test_planted_shop_size_does_not_drive_behaviour_v2(planted) -> None:
    sales, truth, log_size = planted
    v2 = _max_size_correlation(_eligible_features(sales, "behaviour-v2"), truth, log_size)
    seed = _max_size_correlation(_eligible_features(sales, "seed-v1"), truth, log_size)
    assert seed.max() > 0.9  # the seed's volume columns are shop size
    # what remains in v2 is the data's own floor of 1 unit per product, which flattens tiny shops' seasons
    assert v2.max() < 0.45 and v2.median() < 0.25


def test_planted_archetypes_are_separable_in_behaviour_v2(planted) -> None:
    sales, truth, _ = planted
    features = _eligible_features(sales, "behaviour-v2")
    model = make_pipeline(RobustScaler(), KNeighborsClassifier(n_neighbors=15))
    accuracy = cross_val_score(model, features.to_numpy(), truth.loc[features.index].to_numpy(), cv=5).mean()
    assert accuracy >= 0.95
