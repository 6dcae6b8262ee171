"""The synthetic data generator: determinism, schema, planted archetypes, size-free separability, drift, errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from services.cli.main import app
from shared.data import generate, generate_frames, read_sales_csv
from shared.data.archetypes import NAMES
from shared.schemas import SALES_FIELDS

KEY = ["shop_id", "product_id", "year", "month"]


@pytest.fixture(scope="module")
def data():
    return generate_frames(1500, 4, seed=3)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _monthly(sales: pd.DataFrame) -> pd.DataFrame:
    """Per shop and month: total units, distinct products and a month index."""
    out = sales.groupby(["shop_id", "year", "month"], as_index=False).agg(
        qty=("sales_qty", "sum"), products=("product_id", "nunique"))
    out["t"] = out["year"] * 12 + out["month"] - 1
    return out


def _signature(sales: pd.DataFrame) -> pd.DataFrame:
    """Size-free behaviour per shop: season shares, growth, volatility, breadth, activity (a quick check)."""
    m = _monthly(sales)
    m["rel"] = m["qty"] / m.groupby("shop_id")["qty"].transform("mean")
    shares = m.pivot_table(index="shop_id", columns="month", values="rel", aggfunc="mean", fill_value=0.0)
    shares = shares.div(shares.sum(axis=1), axis=0).add_prefix("share_")
    m["z"] = np.log(m["rel"])
    m = m.sort_values(["shop_id", "t"])
    first, last = m.groupby("shop_id")["t"].transform("min"), m.groupby("shop_id")["t"].transform("max")
    m["pos"] = (m["t"] - first) / (last - first).clip(lower=1)
    g = m.groupby("shop_id")
    growth = g.apply(lambda d: np.polyfit(d["t"] / 12.0, d["z"], 1)[0] if len(d) > 2 else 0.0, include_groups=False)
    volatility = g["z"].apply(lambda z: z.diff().std()).fillna(0.0)
    out = shares.assign(
        growth=growth, volatility=volatility, breadth=np.log(g["products"].mean()),
        activity=g.size() / (g["t"].max() - g["t"].min() + 1))
    return out


def test_same_seed_gives_byte_identical_files_and_other_seeds_differ(tmp_path: Path) -> None:
    a = generate(300, 3, seed=11, out_dir=tmp_path / "a", drift_fraction=0.2, drift_month="2025-04")
    b = generate(300, 3, seed=11, out_dir=tmp_path / "b", drift_fraction=0.2, drift_month="2025-04")
    c = generate(300, 3, seed=12, out_dir=tmp_path / "c", drift_fraction=0.2, drift_month="2025-04")
    assert a.rows == b.rows > 0
    assert _sha(a.sales_path) == _sha(b.sales_path) and _sha(a.truth_path) == _sha(b.truth_path)
    assert _sha(a.sales_path) != _sha(c.sales_path)


def test_files_have_the_kaggle_schema_and_match_the_in_memory_frames(tmp_path: Path) -> None:
    summary = generate(200, 2, seed=5, out_dir=tmp_path, end_year=2019)
    assert summary.sales_path.read_text().splitlines()[0] == ",".join(SALES_FIELDS)
    assert summary.truth_path.read_text().splitlines()[0] == "shop_id,archetype,archetype_after,changed_at"
    sales = read_sales_csv(summary.sales_path)  # strict: every row is valid
    frames = generate_frames(200, 2, seed=5, end_year=2019)
    pd.testing.assert_frame_equal(sales, frames.sales)
    truth = pd.read_csv(summary.truth_path, dtype=str)
    pd.testing.assert_frame_equal(truth, frames.truth, check_dtype=False)
    assert len(sales) == summary.rows and (summary.first_month, summary.last_month) == ("2018-01", "2019-12")
    assert set(sales["year"]) == {2018, 2019} and set(sales["month"]) == set(range(1, 13))
    assert not sales.duplicated(KEY).any()
    assert (sales["sales_qty"] >= 1).all() and (sales["sales_qty"] % 1 == 0).all()
    assert set(sales["shop_id"]) <= set(truth["shop_id"])


def test_archetypes_are_planted_with_unequal_but_moderate_shares(data) -> None:
    shares = data.truth["archetype"].value_counts(normalize=True)
    assert set(shares.index) == set(NAMES) and len(NAMES) >= 6
    assert shares.max() < 0.30 and shares.min() > 0.05 and shares.max() > 1.5 * shares.min()
    rows_per_shop = len(data.sales) / len(data.truth)
    assert 25 * 4 <= rows_per_shop <= 60 * 4  # ~25-60 rows per shop-year


def test_size_is_heavy_tailed_inside_every_archetype_and_tells_nothing(data) -> None:
    m = _monthly(data.sales)
    size = np.log(m.groupby("shop_id")["qty"].mean()).rename("log_size")
    frame = data.truth.set_index("shop_id").join(size, how="inner")
    spread = frame.groupby("archetype")["log_size"].std()
    assert (spread > 0.8).all(), spread  # log-normal sigma ~1.15 within each archetype
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    accuracy = cross_val_score(model, frame[["log_size"]], frame["archetype"], cv=3).mean()
    majority = frame["archetype"].value_counts(normalize=True).max()
    assert accuracy < majority + 0.05  # size alone is no better than guessing the largest archetype


def test_archetypes_are_separable_by_size_free_behaviour(data) -> None:
    sig = _signature(data.sales)
    truth = data.truth.set_index("shop_id")["archetype"]
    counts = _monthly(data.sales).groupby("shop_id").size()
    keep = counts[counts >= 12].index  # enough history to show a behaviour
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    accuracy = cross_val_score(model, sig.loc[keep], truth.loc[keep], cv=3).mean()
    assert accuracy > 0.9


def test_tenure_mix_gives_late_joiners_churners_gaps_and_a_few_ineligible_shops(data) -> None:
    m = _monthly(data.sales)
    g = m.groupby("shop_id")
    first, last = g["t"].min(), g["t"].max()
    start, end = 2022 * 12, 2025 * 12 + 11
    assert 0.05 < (first > start + 2).mean() < 0.35  # late joiners (and short-lived shops)
    assert 0.05 < (last < end - 2).mean() < 0.30  # churners
    per_year = m.groupby(["shop_id", "year"]).size()
    active = g.size()
    eligible = (active >= 12) & (per_year.groupby("shop_id").mean() >= 6)
    assert 0.04 <= 1 - eligible.mean() <= 0.12, 1 - eligible.mean()
    steady = data.truth.loc[data.truth["archetype"] == "steady_convenience", "shop_id"]
    holes = (last - first + 1 - active).loc[lambda s: s.index.isin(steady)]
    assert 0.03 < (holes > 0).mean() < 0.25  # gaps in otherwise continuous shops


def test_drift_switches_shops_and_opens_new_ones_at_the_drift_month() -> None:
    d = generate_frames(1200, 3, seed=8, drift_fraction=0.3, drift_month="2025-01")
    truth = d.truth
    assert len(truth) == 1200 + 360
    drifted = truth[truth["archetype_after"].notna()]
    assert (drifted["changed_at"] == "2025-01").all() and (drifted["archetype_after"] != drifted["archetype"]).all()
    m = _monthly(d.sales)
    first = m.groupby("shop_id")["t"].min()
    new = truth["shop_id"].iloc[1200:]
    assert (first.loc[new] == 2025 * 12).all()
    old_looking = (first.loc[truth["shop_id"].iloc[:1200]] <= 2024 * 12).sum()
    assert 0.25 < len(drifted) / old_looking < 0.36  # ~30% of the eligible-looking shops
    # behaviour really changes: shops turned festive widen their range from the drift month on
    festive = drifted.loc[drifted["archetype_after"] == "festive_peak", "shop_id"]
    mf = m[m["shop_id"].isin(festive)]
    before = mf[mf["t"] < 2025 * 12].groupby("shop_id")["products"].mean()
    after = mf[mf["t"] >= 2025 * 12].groupby("shop_id")["products"].mean()
    assert len(festive) >= 10 and (after.loc[before.index] > before + 4).mean() > 0.9


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"retailers": 0}, "retailers"),
        ({"years": 0}, "years"),
        ({"seed": -1}, "seed"),
        ({"end_year": 2101}, "end_year"),
        ({"drift_fraction": 1.5, "drift_month": "2025-01"}, "drift_fraction"),
        ({"drift_fraction": 0.1}, "drift_month"),
        ({"drift_fraction": 0.1, "drift_month": "2025-13"}, "drift_month"),
        ({"drift_fraction": 0.1, "drift_month": "2023-06"}, "drift_month"),  # no 12 months of history before it
        ({"drift_fraction": 0.1, "drift_month": "2026-01"}, "drift_month"),  # after the data
        ({"drift_month": "2025-01"}, "drift_fraction"),
    ],
)
def test_bad_arguments_are_rejected_naming_the_argument(kwargs, field) -> None:
    args = {"retailers": 10, "years": 2, "seed": 1} | kwargs
    with pytest.raises(ValueError, match=rf"^{field}: "):
        generate_frames(**args)


def test_cli_writes_both_files_and_reports_a_summary(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["generate", "--retailers", "50", "--years", "2", "--seed", "4", "--out",
                                 str(tmp_path), "--drift-fraction", "0.2", "--drift-month", "2025-03"])
    assert result.exit_code == 0, result.output
    assert "rows for 60 retailers" in result.output and "2024-01 to 2025-12" in result.output
    assert len(pd.read_csv(tmp_path / "truth.csv")) == 60 and (tmp_path / "sales.csv").stat().st_size > 0
    bad = runner.invoke(app, ["generate", "--retailers", "5", "--years", "2", "--seed", "4", "--out", str(tmp_path),
                              "--drift-fraction", "0.2", "--drift-month", "March"])
    assert bad.exit_code == 2 and "drift_month" in bad.output
