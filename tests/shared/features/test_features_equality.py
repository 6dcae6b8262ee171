"""Property: for any shops, the batch computation and the per-shop (streaming) computation agree, for every
feature set and for eligibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.features import FEATURE_SETS, EligibilityRule, ShopMonths, monthly_table, shop_as_of
from shared.features.build import features_from_monthly

QTY_ANY = st.one_of(
    st.just(0.0),
    st.integers(0, 10**6).map(float),
    st.floats(0, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False),
)
QTY_WHOLE = st.one_of(st.just(0.0), st.integers(0, 5000).map(float))


def records(qty: st.SearchStrategy[float]) -> st.SearchStrategy[list[tuple[int, int, int, float]]]:
    """One shop's raw records (product, year, month, qty): gaps, repeats of a key (replacements) included."""
    years = st.lists(st.integers(2015, 2024), min_size=1, max_size=4, unique=True)
    return years.flatmap(
        lambda ys: st.lists(
            st.tuples(st.integers(0, 4), st.sampled_from(ys), st.integers(1, 12), qty), min_size=1, max_size=70
        )
    )


def sales_frame(shops: list[list[tuple[int, int, int, float]]], interleave: list[int]) -> pd.DataFrame:
    """Records of all shops in one frame: shops interleaved at random, each shop's own record order kept."""
    owner = np.array([i for i, recs in enumerate(shops) for _ in recs])
    rank = np.resize(np.array(interleave or [0]), len(owner))
    pending = {i: iter(recs) for i, recs in enumerate(shops)}
    rows = [(f"s{i}", *next(pending[i])) for i in owner[np.lexsort((np.arange(len(owner)), rank))].tolist()]
    return pd.DataFrame(rows, columns=["shop_id", "product_id", "year", "month", "sales_qty"])


def streaming_state(recs: list[tuple[int, int, int, float]]) -> ShopMonths:
    """What the streaming service keeps: the latest qty per (product, year, month), summed per month."""
    latest: dict[tuple[int, int, int], float] = {}
    for product, year, month, qty in recs:
        latest[(product, year, month)] = qty
    months: dict[tuple[int, int], list[float]] = {}
    for (_, year, month), qty in latest.items():
        months.setdefault((year, month), []).append(qty)
    keys = list(months)[::-1]  # deliberately not sorted: ShopMonths sorts
    return ShopMonths(
        year=[k[0] for k in keys],
        month=[k[1] for k in keys],
        sales_qty=[sum(months[k]) for k in keys],
        unique_products=[len(months[k]) for k in keys],
    )


SHOPS_ANY = st.lists(records(QTY_ANY), min_size=1, max_size=5)
SHOPS_WHOLE = st.lists(records(QTY_WHOLE), min_size=1, max_size=5)
INTERLEAVE = st.lists(st.integers(0, 3), max_size=400)
RULES = st.builds(EligibilityRule, st.sampled_from([0.5, 1.0, 1.5, 2.0]), st.sampled_from([1.0, 3.0, 6.0, 9.0]))


@settings(max_examples=120, deadline=None)
@given(shops=SHOPS_ANY, interleave=INTERLEAVE, rule=RULES)
def test_batch_equals_one_from_the_monthly_table(shops, interleave, rule) -> None:
    monthly = monthly_table(sales_frame(shops, interleave))
    eligible = rule.eligible(monthly)
    for fs in FEATURE_SETS.values():
        batch = fs.compute_batch(monthly)
        assert list(batch.columns) == list(fs.columns)
        assert batch.index.is_monotonic_increasing and batch.index.equals(eligible.index)
        assert np.isfinite(batch.to_numpy()).all()
        for shop_id, rows in monthly.groupby("shop_id"):
            shop = ShopMonths.from_frame(rows.sample(frac=1.0, random_state=0))  # any order in
            one = fs.compute_one(shop)
            assert one.dtype == np.float64 and one.shape == (len(fs.columns),)
            np.testing.assert_allclose(one, batch.loc[shop_id].to_numpy(), rtol=1e-9, atol=1e-9, err_msg=fs.name)
            assert rule.is_eligible(shop) == bool(eligible.loc[shop_id])


@settings(max_examples=80, deadline=None)
@given(shops=SHOPS_WHOLE, interleave=INTERLEAVE, rule=RULES)
def test_batch_from_raw_records_equals_streaming_state(shops, interleave, rule) -> None:
    """Replacement applied record by record (as the stream does) gives the same features as the batch."""
    monthly = monthly_table(sales_frame(shops, interleave))
    head = features_from_monthly(monthly, "seed-v1", rule)
    batches = {name: fs.compute_batch(monthly) for name, fs in FEATURE_SETS.items()}
    for i, recs in enumerate(shops):
        shop = streaming_state(recs)
        assert head.loc[f"s{i}", "as_of"] == shop_as_of(shop)
        assert bool(head.loc[f"s{i}", "eligible"]) == rule.is_eligible(shop)
        for name, fs in FEATURE_SETS.items():
            want = batches[name].loc[f"s{i}"].to_numpy()
            np.testing.assert_allclose(fs.compute_one(shop), want, rtol=1e-9, atol=1e-9, err_msg=name)
