"""The public shape of shared.features: frames, registry, and clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.features import (
    FEATURE_SETS,
    MONTHLY_COLUMNS,
    EligibilityRule,
    FeatureSet,
    ShopMonths,
    build_features,
    get_feature_set,
    monthly_table,
    shop_as_of,
    stored_feature_sets,
)
from shared.features.panel import Panel


def sales(**overrides) -> pd.DataFrame:
    base = {
        "shop_id": ["b", "a", "a", "b", "a"],
        "product_id": ["p1", "p1", "p2", "p1", "p1"],
        "year": [2021, 2020, 2020, 2021, 2021],
        "month": [3, 12, 12, 1, 2],
        "sales_qty": [5.0, 1.0, 0.0, 2.0, 4.0],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_registry_and_feature_set_shape() -> None:
    assert set(FEATURE_SETS) == {"seed-v1", "behaviour-v2", "behaviour-v3", "behaviour-v4"}
    assert len(get_feature_set("seed-v1").columns) == 29
    fs = get_feature_set("behaviour-v2")
    assert isinstance(fs, FeatureSet) and get_feature_set(fs) is fs
    for each in FEATURE_SETS.values():  # every column is explained
        assert tuple(each.descriptions) == each.columns and all(len(d) > 20 for d in each.descriptions.values())
    with pytest.raises(ValueError, match=r"feature_set: unknown feature set 'nope'.*behaviour-v2"):
        get_feature_set("nope")


def test_stored_feature_sets_default_to_all_and_must_hold_the_training_set() -> None:
    assert [fs.name for fs in stored_feature_sets([], "behaviour-v3")] == sorted(FEATURE_SETS)
    chosen = stored_feature_sets(["behaviour-v3", "seed-v1", "behaviour-v3"], "behaviour-v3")
    assert [fs.name for fs in chosen] == ["behaviour-v3", "seed-v1"]
    with pytest.raises(ValueError, match=r"feature_store_sets: unknown feature set\(s\) \['nope'\]"):
        stored_feature_sets(["behaviour-v3", "nope"], "behaviour-v3")
    with pytest.raises(ValueError, match=r"feature_store_sets: must include feature_set 'behaviour-v3'"):
        stored_feature_sets(["seed-v1"], "behaviour-v3")


@pytest.mark.parametrize("name", sorted(FEATURE_SETS))
def test_build_features_frame(name: str) -> None:
    rule = EligibilityRule(min_tenure_years=0, min_avg_active_months_per_year=1.5, partial_years="count")
    out = build_features(sales(), name, rule)
    fs = get_feature_set(name)
    assert list(out.columns) == ["eligible", "as_of", *fs.columns]
    assert out.index.name == "shop_id" and list(out.index) == ["a", "b"]
    # a: 2 active months in 2 years counted whole (1 per year), b: 2 in one year
    assert out["eligible"].dtype == bool and out["eligible"].tolist() == [False, True]
    assert out["as_of"].tolist() == ["2021-02", "2021-03"]
    assert (out[list(fs.columns)].dtypes == np.float64).all()


def test_monthly_table_shape_and_order() -> None:
    got = monthly_table(sales())
    assert tuple(got.columns) == MONTHLY_COLUMNS
    assert got[["shop_id", "year", "month"]].values.tolist() == [
        ["a", 2020, 12],
        ["a", 2021, 2],
        ["b", 2021, 1],
        ["b", 2021, 3],
    ]
    assert got["monthly_unique_products"].tolist() == [2, 1, 1, 1]


def test_empty_input_gives_empty_frames() -> None:
    empty = sales().iloc[:0]
    assert monthly_table(empty).empty
    out = build_features(empty, "behaviour-v2", EligibilityRule())
    assert out.empty and list(out.columns)[:2] == ["eligible", "as_of"]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (sales().drop(columns=["sales_qty"]), r"sales: missing column\(s\) \['sales_qty'\]"),
        (sales(month=[3, 12, 13, 1, 2]), r"month: 1 row\(s\) are outside 1..12"),
        (sales(year=[2021, 2020.5, 2020, 2021, 2021]), r"year: 1 row\(s\) are not integers"),
        (sales(sales_qty=[5.0, -1.0, 0.0, 2.0, 4.0]), r"sales_qty: 1 row\(s\) are negative"),
        (sales(sales_qty=[5.0, np.inf, 0.0, np.nan, 4.0]), r"sales_qty: 2 row\(s\) are missing, not numbers"),
        (sales(sales_qty=["5", "x", 0, 2, 4]), r"sales_qty: 1 row\(s\) are missing, not numbers"),
        (sales(shop_id=["b", None, "a", "b", "a"]), r"shop_id: 1 row\(s\) are missing \(first at index 1\)"),
    ],
)
def test_bad_sales_name_the_field(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        monthly_table(frame)


def test_bad_monthly_tables_name_the_field() -> None:
    monthly = monthly_table(sales())
    with pytest.raises(ValueError, match=r"monthly: missing column\(s\) \['monthly_sales_qty'\]"):
        get_feature_set("seed-v1").compute_batch(monthly.drop(columns=["monthly_sales_qty"]))
    with pytest.raises(ValueError, match="appears more than once"):
        EligibilityRule().eligible(pd.concat([monthly, monthly]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"year": [2020, 2020], "month": [1], "sales_qty": [1, 2], "unique_products": [1, 1]}, "month: length 1"),
        ({"year": [], "month": [], "sales_qty": [], "unique_products": []}, "at least one month"),
        ({"year": [2020], "month": [0], "sales_qty": [1], "unique_products": [1]}, r"month: values must be 1..12"),
        ({"year": [2020], "month": [1], "sales_qty": [-1], "unique_products": [1]}, "sales_qty: values must be"),
        ({"year": [2020], "month": [1], "sales_qty": [np.nan], "unique_products": [1]}, "sales_qty: values must"),
        ({"year": [2020, 2020], "month": [2, 2], "sales_qty": [1, 2], "unique_products": [1, 1]}, "more than once"),
    ],
)
def test_bad_shop_months(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ShopMonths(**kwargs)


def test_shop_months_sorts_copies_and_freezes() -> None:
    qty = np.array([3.0, 1.0, 2.0])
    shop = ShopMonths([2021, 2020, 2020], [1, 12, 11], qty, [1, 1, 1])
    assert shop.sales_qty.tolist() == [2.0, 1.0, 3.0] and shop_as_of(shop) == "2021-01"
    assert qty.flags.writeable  # the caller's array is untouched
    with pytest.raises(ValueError):
        shop.sales_qty[0] = 9.0
    with pytest.raises(ValueError, match="several shops"):
        ShopMonths.from_frame(monthly_table(sales()))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_tenure_years": -1}, "min_tenure_years: must be between 0"),
        ({"min_avg_active_months_per_year": 13}, "min_avg_active_months_per_year: must be between 0 and 12"),
        ({"partial_years": "half"}, "partial_years: must be one of"),
        ({"min_tenure_years": "1"}, "min_tenure_years: must be a finite number"),
    ],
)
def test_bad_rule(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EligibilityRule(**kwargs)


def test_eligibility_counts_zero_months_and_ignores_inactive_years() -> None:
    # 12 months over 2 active years (2018: 6, 2020: 6; 2019 inactive) with zero volume in some of them
    year = [2018] * 6 + [2020] * 6
    month = list(range(1, 7)) * 2
    shop = ShopMonths(year, month, [0.0] * 12, [1] * 12)
    assert EligibilityRule().is_eligible(shop)
    assert not EligibilityRule(min_avg_active_months_per_year=6.5, partial_years="count").is_eligible(shop)
    # prorated, 2020 counts half a year (the shop's last active month is June): 12 / 1.5 = 8 per year
    assert EligibilityRule(min_avg_active_months_per_year=8).is_eligible(shop)
    assert not EligibilityRule(min_avg_active_months_per_year=8.1).is_eligible(shop)
    assert not EligibilityRule(min_tenure_years=1.1).is_eligible(shop)


def test_a_new_years_first_month_does_not_drop_a_retailer_and_the_seed_rule_still_does() -> None:
    """7 active months in each of 2019-2022, then January 2023: whole years give 29 / 5 = 5.8 < 6; prorated,
    the last year counts 1/12 (29 / 4.083 = 7.1) and the shop stays eligible, in batch and per shop alike."""
    year = [y for y in range(2019, 2023) for _ in range(7)] + [2023]
    month = list(range(1, 8)) * 4 + [1]
    shop = ShopMonths(year, month, [1.0] * 29, [1] * 29)
    monthly = pd.DataFrame({"shop_id": "s", "year": year, "month": month, "monthly_sales_qty": 1.0,
                            "monthly_unique_products": 1})
    prorated, whole = EligibilityRule(partial_years="prorate"), EligibilityRule(partial_years="count")
    assert prorated.is_eligible(shop) and bool(prorated.eligible(monthly).iloc[0])
    assert not whole.is_eligible(shop) and not bool(whole.eligible(monthly).iloc[0])
    panel = Panel.from_monthly(monthly)
    assert prorated.active_months_per_year(panel)[0] == pytest.approx(29 / (5 - 11 / 12))
    late = ShopMonths([2022] * 6 + [2023] * 6, [7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6], [1.0] * 12, [1] * 12)
    assert prorated.is_eligible(late) and not EligibilityRule(min_avg_active_months_per_year=7,
                                                              partial_years="count").is_eligible(late)
    assert EligibilityRule(partial_years="last").active_months_per_year(panel)[0] == pytest.approx(29 / (5 - 11 / 12))


@pytest.mark.parametrize(("rule", "per_year"), [("count", 5 / 2), ("last", 5 / (2 - 9 / 12)),
                                                ("prorate", 5 / (2 - 9 / 12 - 9 / 12))])
def test_a_late_joiner_first_year_counts_whole_unless_prorate(rule: str, per_year: float) -> None:
    """Joined in October 2022 (3 months), 2 months in 2023 up to March: the first year is prorated only by
    "prorate"; "last" (the default) prorates 2023 alone, so a short first year does not lift the mean."""
    shop = ShopMonths([2022] * 3 + [2023] * 2, [10, 11, 12, 1, 3], [1.0] * 5, [1] * 5)
    monthly = pd.DataFrame({"shop_id": "s", "year": shop.year, "month": shop.month, "monthly_sales_qty": 1.0,
                            "monthly_unique_products": 1})
    eligibility = EligibilityRule(min_tenure_years=0, min_avg_active_months_per_year=3, partial_years=rule)
    assert eligibility.active_months_per_year(Panel.from_monthly(monthly))[0] == pytest.approx(per_year)
    assert eligibility.is_eligible(shop) is (per_year >= 3)
    assert bool(eligibility.eligible(monthly).iloc[0]) is (per_year >= 3)
    assert EligibilityRule(min_tenure_years=0).partial_years == "last"
