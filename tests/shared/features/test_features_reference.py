"""seed-v1, the monthly table and eligibility against a straightforward pandas version of the seed's recipe.

The ``reference_*`` functions are written once here and reused by ``bench/bench_features.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.data.generator import generate_frames
from shared.features import FEATURE_SETS, EligibilityRule, build_features, get_feature_set, monthly_table

KEY = ["shop_id", "product_id", "year", "month"]

SEED_RULE = EligibilityRule(partial_years="count")  # the case study's rule: every active year counts whole


def reference_monthly(sales: pd.DataFrame) -> pd.DataFrame:
    """Replace rule (keep the last row per key), then sum and distinct products per (shop, year, month)."""
    latest = sales.drop_duplicates(KEY, keep="last")
    return (
        latest.groupby(["shop_id", "year", "month"])
        .agg(monthly_sales_qty=("sales_qty", "sum"), monthly_unique_products=("product_id", "nunique"))
        .reset_index()
    )


def reference_eligible(monthly: pd.DataFrame, min_tenure_years: float = 1, min_avg: float = 6) -> pd.Series:
    per_year = monthly.groupby(["shop_id", "year"]).size()
    stats = per_year.groupby(level="shop_id").agg(["sum", "mean"])
    return (stats["sum"] >= 12 * min_tenure_years) & (stats["mean"] >= min_avg)


def reference_seed_v1(monthly: pd.DataFrame) -> pd.DataFrame:
    """The seed's 29 features with pandas groupby / unstack / pct_change; undefined values -> 0."""
    parts = []
    for col, prefix in (
        ("monthly_sales_qty", "avg_sales_qty_month_"),
        ("monthly_unique_products", "avg_unique_products_month_"),
    ):
        avg = monthly.groupby(["shop_id", "month"])[col].mean().round(2).unstack(fill_value=0)
        parts.append(avg.reindex(columns=range(1, 13), fill_value=0).add_prefix(prefix))
    for col, name in (
        ("monthly_sales_qty", "cv_monthly_sales_qty"),
        ("monthly_unique_products", "cv_monthly_unique_products"),
    ):
        stats = monthly.groupby("shop_id")[col].agg(["mean", "std"])
        cv = np.where(stats["mean"] > 0, stats["std"] / stats["mean"], 0.0)
        parts.append(pd.Series(cv, index=stats.index, name=name).fillna(0.0))
    m = monthly.copy()
    m["total"] = m.groupby("shop_id")["monthly_sales_qty"].transform("sum")
    m["p"] = np.where(m["total"] > 0, m["monthly_sales_qty"] / m["total"], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        m["h"] = np.where(m["p"] > 0, -m["p"] * np.log(m["p"]), 0.0)
    ent = m.groupby("shop_id").agg(raw=("h", "sum"), k=("month", "nunique"))
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = np.where(ent["k"] > 1, ent["raw"] / np.log(ent["k"]), 0.0)
    parts.append(pd.Series(entropy, index=ent.index, name="monthly_sales_entropy"))
    yearly = (
        monthly.groupby(["shop_id", "year"])
        .agg(ys=("monthly_sales_qty", "sum"), yu=("monthly_unique_products", "mean"))
        .reset_index()
        .sort_values(["shop_id", "year"])
    )
    yearly["gs"] = yearly.groupby("shop_id")["ys"].pct_change()
    yearly["gu"] = yearly.groupby("shop_id")["yu"].pct_change()
    growth = (
        yearly.groupby("shop_id")
        .agg(median_yoy_sales_growth=("gs", "median"), median_yoy_spread_growth=("gu", "median"))
        .replace([np.inf, -np.inf], np.nan)
        .fillna(0.0)
    )
    parts.append(growth)
    return pd.concat(parts, axis=1).astype(np.float64).sort_index()


def reference_build(sales: pd.DataFrame) -> pd.DataFrame:
    """The whole seed recipe: monthly table, eligibility, 29 features (what the bench times)."""
    monthly = reference_monthly(sales)
    out = reference_seed_v1(monthly)
    out.insert(0, "eligible", reference_eligible(monthly))
    return out


def random_sales(seed: int, n_shops: int = 60, string_ids: bool = False) -> pd.DataFrame:
    """Small messy sales records: gaps, single-month and zero-volume shops, zero quantities, replacements."""
    rng = np.random.default_rng(seed)
    frames = []
    for shop in range(n_shops):
        kind = shop % 6
        n_years = 1 if kind == 0 else int(rng.integers(1, 5))
        years = np.sort(rng.choice(np.arange(2018, 2025), size=n_years, replace=False))
        periods = [(y, m) for y in years for m in range(1, 13) if rng.random() < (0.9 if kind != 1 else 0.4)]
        if kind == 2 or not periods:
            periods = [(int(years[0]), int(rng.integers(1, 13)))]
        n_products = int(rng.integers(1, 8))
        rows = []
        for y, m in periods:
            for p in rng.choice(n_products, size=int(rng.integers(1, n_products + 1)), replace=False):
                qty = 0 if kind == 3 else int(rng.integers(0, 3) * rng.integers(0, 200))
                rows.append((shop, int(p), int(y), int(m), qty))
        frame = pd.DataFrame(rows, columns=["shop_id", "product_id", "year", "month", "sales_qty"])
        dup = frame.sample(frac=0.2, random_state=seed + shop)
        dup = dup.assign(sales_qty=rng.integers(0, 300, len(dup)))  # later corrections replace the values
        frames.extend([frame, dup])
    sales = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    if string_ids:
        sales["shop_id"] = "shop-" + sales["shop_id"].astype(str).str.zfill(4)
    return sales


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_monthly_table_matches_reference(seed: int) -> None:
    sales = random_sales(seed)
    got = monthly_table(sales)
    want = reference_monthly(sales)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_replace_rule_keeps_the_last_record() -> None:
    sales = pd.DataFrame(
        {
            "shop_id": ["a", "a", "a", "a"],
            "product_id": [1, 2, 1, 1],
            "year": 2020,
            "month": 3,
            "sales_qty": [5.0, 0.0, 7.0, 2.0],
        }
    )
    got = monthly_table(sales)
    assert got["monthly_sales_qty"].tolist() == [2.0]  # 1 -> 2 (last), 2 -> 0
    assert got["monthly_unique_products"].tolist() == [2]  # qty 0 still counts


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("string_ids", [False, True])
def test_seed_v1_matches_pandas_reference(seed: int, string_ids: bool) -> None:
    sales = random_sales(seed, string_ids=string_ids)
    got = build_features(sales, "seed-v1", SEED_RULE)
    want = reference_build(sales)
    assert list(got.index) == list(want.index)
    assert got["eligible"].tolist() == want["eligible"].tolist()
    cols = list(get_feature_set("seed-v1").columns)
    assert list(want.columns[1:]) == cols
    np.testing.assert_allclose(got[cols].to_numpy(), want[cols].to_numpy(), rtol=1e-9, atol=1e-9)


def test_seed_v1_matches_pandas_reference_on_generated_data() -> None:
    """The project's generator (string ids, planted archetypes), plus 2% later corrections of earlier records."""
    sales = generate_frames(retailers=150, years=3, seed=11).sales
    rng = np.random.default_rng(0)
    fixes = sales.iloc[rng.integers(0, len(sales), len(sales) // 50)].assign(sales_qty=lambda d: d["sales_qty"] + 3)
    sales = pd.concat([sales, fixes], ignore_index=True)
    got = build_features(sales, "seed-v1", SEED_RULE)
    want = reference_build(sales)
    assert list(got.index) == list(want.index) and got["eligible"].tolist() == want["eligible"].tolist()
    assert got["eligible"].any() and not got["eligible"].all()
    cols = list(get_feature_set("seed-v1").columns)
    np.testing.assert_allclose(got[cols].to_numpy(), want[cols].to_numpy(), rtol=1e-9, atol=1e-9)


def test_reference_has_the_seeds_nan_cases_and_we_do_not() -> None:
    sales = random_sales(4)
    out = build_features(sales, "seed-v1", SEED_RULE)
    one_month = reference_monthly(sales).groupby("shop_id").size() == 1
    assert one_month.any()
    assert np.isfinite(out[list(FEATURE_SETS["seed-v1"].columns)].to_numpy()).all()
    assert (out.loc[one_month[one_month].index, "cv_monthly_sales_qty"] == 0).all()


@pytest.mark.parametrize(("tenure", "avg"), [(1.0, 6.0), (2.0, 3.0), (0.5, 9.0)])
def test_eligibility_matches_reference(tenure: float, avg: float) -> None:
    monthly = monthly_table(random_sales(5))
    got = EligibilityRule(tenure, avg, "count").eligible(monthly)
    want = reference_eligible(monthly, tenure, avg)
    assert got.index.equals(want.index)
    assert got.tolist() == want.tolist()
    assert 0 < got.sum() < len(got)  # the data exercises both outcomes
