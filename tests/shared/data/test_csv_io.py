"""The Kaggle-schema CSV reader: dtypes, column handling, chunking, and every kind of bad input in both modes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.data import (
    SALES_DTYPES,
    SalesCSVError,
    collect_sales_csv,
    iter_sales_batches,
    iter_sales_chunks,
    read_sales_csv,
)
from shared.schemas import SALES_FIELDS

HEADER = ",".join(SALES_FIELDS)
GOOD = ["S1,P1,2021,1,3", "S1,P2,2021,2,4.5", "007,42,2100,12,0", "S2,P1,1900,6,10"]


def _write(tmp_path: Path, lines: list[str], name: str = "sales.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_exact_schema_with_contract_dtypes(tmp_path: Path) -> None:
    frame = read_sales_csv(_write(tmp_path, [HEADER, *GOOD]))
    assert {c: str(t) for c, t in frame.dtypes.items()} == {c: str(pd.Series(dtype=t).dtype)
                                                          for c, t in SALES_DTYPES.items()}
    assert frame["shop_id"].tolist() == ["S1", "S1", "007", "S2"]  # ids stay text: no lost leading zeros
    assert frame["product_id"].tolist() == ["P1", "P2", "42", "P1"]
    assert frame["year"].tolist() == [2021, 2021, 2100, 1900] and frame["month"].tolist() == [1, 2, 12, 6]
    assert frame["sales_qty"].tolist() == [3.0, 4.5, 0.0, 10.0]


def test_any_column_order_and_extra_columns_are_accepted(tmp_path: Path) -> None:
    lines = ["note,sales_qty,month,year,product_id,shop_id", "x,3,1,2021,P1,S1", "y,4.5,2,2021,P2,S1"]
    frame = read_sales_csv(_write(tmp_path, lines))
    assert list(frame.columns) == list(SALES_FIELDS)
    assert frame.to_dict("records") == [
        {"shop_id": "S1", "product_id": "P1", "year": 2021, "month": 1, "sales_qty": 3.0},
        {"shop_id": "S1", "product_id": "P2", "year": 2021, "month": 2, "sales_qty": 4.5},
    ]


def test_chunks_cover_the_file_and_keep_line_numbers(tmp_path: Path) -> None:
    lines = [HEADER] + [f"S{i},P{i % 3},2020,{i % 12 + 1},{i}" for i in range(23)]
    path = _write(tmp_path, lines)
    chunks = list(iter_sales_chunks(path, chunksize=5))
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 3]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), read_sales_csv(path))
    lines[19] = "S18,P0,2020,7,-1"  # line 20 of the file, in the 4th chunk
    with pytest.raises(SalesCSVError) as err:
        list(iter_sales_chunks(_write(tmp_path, lines), chunksize=5))
    assert (err.value.line, err.value.field) == (20, "sales_qty")


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ("S1,P1,2021,1,abc", "sales_qty", "must be a number, got 'abc'"),
        ("S1,P1,2021,1,", "sales_qty", "must be a number, got ''"),
        ("S1,P1,2021,1,-2", "sales_qty", "must be >= 0, got -2"),
        ("S1,P1,2021,1,inf", "sales_qty", "must be a finite number, got 'inf'"),
        ("S1,P1,2021,1,nan", "sales_qty", "must be a finite number, got 'nan'"),
        ("S1,P1,2021,13,1", "month", "must be between 1 and 12, got 13"),
        ("S1,P1,2021,0,1", "month", "must be between 1 and 12, got 0"),
        ("S1,P1,2021,June,1", "month", "must be an integer, got 'June'"),
        ("S1,P1,1899,1,1", "year", "must be between 1900 and 2100, got 1899"),
        ("S1,P1,2101,1,1", "year", "must be between 1900 and 2100, got 2101"),
        ("S1,P1,2021.5,1,1", "year", "must be an integer, got '2021.5'"),
        (",P1,2021,1,1", "shop_id", "must not be empty"),
        ("S1,,2021,1,1", "product_id", "must not be empty"),
        ("S" * 65 + ",P1,2021,1,1", "shop_id", "must be at most 64 characters, got 65"),
        ("S1," + "P" * 65 + ",2021,1,1", "product_id", "must be at most 64 characters, got 65"),
        ("", "record", "empty line"),
    ],
)
def test_each_bad_value_is_named_by_line_and_field_in_both_modes(tmp_path: Path, row, field, message) -> None:
    path = _write(tmp_path, [HEADER, GOOD[0], GOOD[1], row, GOOD[2]])  # the bad row is line 4
    with pytest.raises(SalesCSVError) as err:
        read_sales_csv(path)
    assert (err.value.line, err.value.field, err.value.message) == (4, field, message)
    assert str(err.value) == f"line 4, {field}: {message}"
    batch = collect_sales_csv(path)
    assert batch.rejected[["line", "field", "message"]].to_dict("records") == [
        {"line": 4, "field": field, "message": message}]
    assert batch.rows["shop_id"].tolist() == ["S1", "S1", "007"]  # the good rows go on
    assert batch.rows.dtypes.to_dict() == read_sales_csv(_write(tmp_path, [HEADER, *GOOD], "ok.csv")).dtypes.to_dict()


def test_a_64_character_id_is_accepted(tmp_path: Path) -> None:
    frame = read_sales_csv(_write(tmp_path, [HEADER, "S" * 64 + ",P1,2021,1,1"]))
    assert frame["shop_id"].str.len().tolist() == [64]


@pytest.mark.parametrize("missing", SALES_FIELDS)
def test_a_missing_column_is_named_on_line_1(tmp_path: Path, missing: str) -> None:
    header = [f for f in SALES_FIELDS if f != missing]
    path = _write(tmp_path, [",".join(header), ",".join("1" for _ in header)])
    for read in (read_sales_csv, collect_sales_csv):
        with pytest.raises(SalesCSVError, match=rf"^line 1, {missing}: missing column '{missing}'") as err:
            read(path)
        assert (err.value.line, err.value.field) == (1, missing)


def test_an_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(SalesCSVError, match="line 1, header: the file is empty"):
        read_sales_csv(path)


def test_collecting_groups_several_problems_of_one_line(tmp_path: Path) -> None:
    batch = collect_sales_csv(_write(tmp_path, [HEADER, "S1,P1,1800,14,-1", GOOD[0]]))
    assert batch.rejected_records() == [{
        "line": 2,
        "record": {"shop_id": "S1", "product_id": "P1", "year": "1800", "month": "14", "sales_qty": "-1"},
        "errors": [
            {"field": "year", "message": "must be between 1900 and 2100, got 1800"},
            {"field": "month", "message": "must be between 1 and 12, got 14"},
            {"field": "sales_qty", "message": "must be >= 0, got -1"},
        ],
    }]
    assert len(batch.rows) == 1


def test_header_only_gives_an_empty_typed_frame(tmp_path: Path) -> None:
    frame = read_sales_csv(_write(tmp_path, [HEADER]))
    assert frame.empty and list(frame.columns) == list(SALES_FIELDS)
    assert collect_sales_csv(_write(tmp_path, [HEADER])).rejected.empty


def test_chunksize_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^chunksize: "):
        list(iter_sales_batches(_write(tmp_path, [HEADER, *GOOD]), chunksize=0))


BAD_VALUES = {"year": ["1899", "x", ""], "month": ["0", "13", "1.5"], "sales_qty": ["-1", "inf", "q"],
              "shop_id": ["", "s" * 65], "product_id": [""]}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 60),
    bad=st.dictionaries(st.integers(0, 59), st.sampled_from([(f, v) for f, vs in BAD_VALUES.items() for v in vs]),
                        max_size=8),
    chunksize=st.integers(4, 25),
)
def test_collecting_rejects_exactly_the_corrupted_lines(tmp_path: Path, n, bad, chunksize) -> None:
    rows = [{"shop_id": f"S{i}", "product_id": f"P{i % 4}", "year": "2020", "month": str(i % 12 + 1),
             "sales_qty": str(i)} for i in range(n)]
    corrupted = {i: fv for i, fv in bad.items() if i < n}
    for i, (field, value) in corrupted.items():
        rows[i][field] = value
    path = tmp_path / "prop.csv"
    path.write_text("\n".join([HEADER] + [",".join(r[f] for f in SALES_FIELDS) for r in rows]) + "\n")
    batches = list(iter_sales_batches(path, chunksize=chunksize))
    rejected = pd.concat([b.rejected for b in batches])
    valid = pd.concat([b.rows for b in batches])
    assert sorted(set(rejected["line"])) == sorted(i + 2 for i in corrupted)
    assert set(zip(rejected["line"], rejected["field"], strict=True)) == {(i + 2, f) for i, (f, _) in corrupted.items()}
    assert valid["shop_id"].tolist() == [f"S{i}" for i in range(n) if i not in corrupted]
