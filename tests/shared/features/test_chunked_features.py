"""Out-of-core batch features: a CSV read in chunks and partitions of shops gives the in-memory features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.data import SalesCSVError, generate_frames, read_sales_csv
from shared.features import EligibilityRule, get_feature_set
from shared.features.build import features_from_monthly
from shared.features.chunked import features_from_csv_partitioned, partitions_for
from shared.features.monthly import monthly_panel
from shared.features.profile import data_profile
from shared.pipeline import _read_features


def _in_memory(path: Path, feature_set: str, rule: EligibilityRule) -> tuple[pd.DataFrame, dict]:
    panel = monthly_panel(read_sales_csv(path))
    return features_from_monthly(panel, get_feature_set(feature_set), rule), data_profile(panel, rule)


@pytest.fixture(scope="module")
def sales_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generator data, shuffled (shops interleave across chunks), with corrections far from the rows they
    replace and a shop whose id sorts before the others but appears last."""
    sales = generate_frames(300, 3, seed=5).sales
    sales = sales.sample(frac=1.0, random_state=1).reset_index(drop=True)
    corrections = sales.iloc[:400].assign(sales_qty=lambda f: f["sales_qty"] * 3 + 1)
    late = pd.DataFrame({"shop_id": "A-late", "product_id": "P1", "year": 2023, "month": np.arange(1, 13),
                         "sales_qty": 5.0})
    path = tmp_path_factory.mktemp("chunked") / "sales.csv"
    pd.concat([sales, corrections, late], ignore_index=True).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("feature_set", ["behaviour-v4", "seed-v1"])
@pytest.mark.parametrize(("partitions", "chunksize"), [(1, 10**9), (3, 5_000), (7, 1_234)])
def test_partitioned_reading_equals_in_memory(sales_csv: Path, feature_set: str, partitions: int,
                                              chunksize: int) -> None:
    rule = EligibilityRule()
    expected, expected_profile = _in_memory(sales_csv, feature_set, rule)
    got, profile = features_from_csv_partitioned(sales_csv, feature_set, rule, partitions, chunksize=chunksize)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert profile == expected_profile
    assert got.index[0] == "A-late" and got.index.is_monotonic_increasing


def test_corrections_across_chunks_replace_not_add(tmp_path: Path) -> None:
    rows = [f"S1,P1,2022,{m},10" for m in range(1, 13)] + ["S2,P1,2022,1,1"] + ["S1,P1,2022,3,99"]
    path = tmp_path / "sales.csv"
    path.write_text("shop_id,product_id,year,month,sales_qty\n" + "\n".join(rows) + "\n")
    rule = EligibilityRule(min_tenure_years=0, min_avg_active_months_per_year=0)
    got, _ = features_from_csv_partitioned(path, "seed-v1", rule, partitions=2, chunksize=4)
    expected, _ = _in_memory(path, "seed-v1", rule)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_pipeline_reads_out_of_core_only_above_the_partition_size(sales_csv: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    size = sales_csv.stat().st_size
    assert partitions_for(sales_csv, size) == 1 and partitions_for(sales_csv, size // 3 - 1) == 4
    calls: list[int] = []
    import shared.pipeline as pipeline

    real = pipeline.features_from_csv_partitioned
    monkeypatch.setattr(pipeline, "features_from_csv_partitioned",
                        lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    rule = EligibilityRule()
    small, _ = _read_features(sales_csv, "behaviour-v4", rule, partition_bytes=size)
    assert calls == []
    large, _ = _read_features(sales_csv, "behaviour-v4", rule, partition_bytes=size // 3 - 1)
    assert calls == [4]
    pd.testing.assert_frame_equal(large, small, check_exact=True)


def test_a_bad_line_is_named_as_the_strict_reader_names_it(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_text("shop_id,product_id,year,month,sales_qty\nS1,P1,2022,1,3\nS1,P1,2022,13,3\n")
    with pytest.raises(SalesCSVError, match="line 3, month"):
        features_from_csv_partitioned(path, "seed-v1", EligibilityRule(), partitions=2, chunksize=1)
