"""Matching new clusters to segments: examples of each transition, and properties over random partitions."""

from __future__ import annotations

import json
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from jsonschema import validate

from shared.segments import LINEAGE_FIELDS, MatchParams, SegmentIdState, format_segment_id, match_clusters

ASYNCAPI = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"


def series(groups: dict[object, range | list[int]], noise: range | list[int] = ()) -> pd.Series:
    """shop_id -> label from {label: shops}; ``noise`` shops get None (segments) or -1 (int labels)."""
    data = {shop: label for label, shops in groups.items() for shop in shops}
    is_int = all(isinstance(label, int) for label in groups)
    data.update({shop: -1 if is_int else None for shop in noise})
    return pd.Series(data, dtype=np.int64 if is_int else object)


def test_identical_partition_with_new_numbering_continues_every_segment() -> None:
    prev = series({"seg-0001": range(0, 50), "seg-0002": range(50, 80), "seg-0003": range(80, 90)}, noise=[90, 91])
    new = series({7: range(0, 50), 3: range(50, 80), 0: range(80, 90)}, noise=[90, 91])
    result = match_clusters(prev, new, SegmentIdState(4))
    assert result.cluster_to_segment == {7: "seg-0001", 3: "seg-0002", 0: "seg-0003"}
    assert [c["jaccard"] for c in result.continued] == [1.0, 1.0, 1.0]
    assert result.stable == ["seg-0001", "seg-0002", "seg-0003"]
    assert (result.born, result.retired, result.split, result.merged) == ([], [], [], [])
    assert result.state == SegmentIdState(4)


def test_first_model_ids_by_size_then_smallest_member() -> None:
    new = series({5: range(100, 130), 2: range(0, 10), 9: range(10, 40), 1: range(40, 100)})
    result = match_clusters(None, new, SegmentIdState())
    # sizes 30 (min 100), 10, 30 (min 10), 60 -> 60, then the two 30s by smallest member, then 10
    assert result.cluster_to_segment == {1: "seg-0001", 9: "seg-0002", 5: "seg-0003", 2: "seg-0004"}
    assert result.born == ["seg-0001", "seg-0002", "seg-0003", "seg-0004"]
    assert result.state == SegmentIdState(5)
    assert result.to_lineage(1, None)["previous_version"] is None


def test_clean_split_dominant_part_keeps_id_other_part_is_a_child_not_born() -> None:
    prev = series({"seg-0001": range(100), "seg-0002": range(100, 150)})
    new = series({0: range(60), 1: range(60, 100), 2: range(100, 150)})
    result = match_clusters(prev, new, SegmentIdState(3))
    assert result.cluster_to_segment == {0: "seg-0001", 1: "seg-0003", 2: "seg-0002"}
    assert result.split == [{"from": "seg-0001", "into": ["seg-0001", "seg-0003"]}]
    assert result.born == [] and result.retired == [] and result.merged == []
    assert result.continued[0] == {"segment": "seg-0001", "cluster": 0, "jaccard": 0.6}


def test_even_split_retires_the_parent_and_both_halves_get_new_ids() -> None:
    # each half: Jaccard 0.5 but only half of the segment, so neither continues it
    prev = series({"seg-0004": range(40)})
    new = series({3: range(20), 8: range(20, 40)})
    result = match_clusters(prev, new, SegmentIdState(5))
    assert result.continued == [] and result.retired == ["seg-0004"] and result.born == []
    assert result.cluster_to_segment == {3: "seg-0005", 8: "seg-0006"}
    assert result.split == [{"from": "seg-0004", "into": ["seg-0005", "seg-0006"]}]


def test_clean_merge_continues_the_best_match_and_retires_the_other() -> None:
    prev = series({"seg-0001": range(60), "seg-0002": range(60, 100)})
    new = series({4: range(100)})
    result = match_clusters(prev, new, SegmentIdState(3))
    assert result.cluster_to_segment == {4: "seg-0001"}
    assert result.merged == [{"from": ["seg-0001", "seg-0002"], "into": "seg-0001"}]
    assert result.retired == ["seg-0002"] and result.born == [] and result.split == []


def test_merge_of_three_equals_gets_a_new_id() -> None:
    prev = series({"seg-0001": range(30), "seg-0002": range(30, 60), "seg-0003": range(60, 90)})
    result = match_clusters(prev, series({0: range(90)}), SegmentIdState(4))
    assert result.cluster_to_segment == {0: "seg-0004"}
    assert result.merged == [{"from": ["seg-0001", "seg-0002", "seg-0003"], "into": "seg-0004"}]
    assert result.retired == ["seg-0001", "seg-0002", "seg-0003"]
    assert result.born == ["seg-0004"]  # a merge product with a new id is born (not a split child)


def test_birth_and_retirement() -> None:
    prev = series({"seg-0001": range(50), "seg-0002": range(50, 80)})
    # seg-0002's retailers all become noise; cluster 5 holds only retailers never seen before
    new = series({1: range(50), 5: range(200, 240)}, noise=range(50, 80))
    result = match_clusters(prev, new, SegmentIdState(3))
    assert result.cluster_to_segment == {1: "seg-0001", 5: "seg-0003"}
    assert result.born == ["seg-0003"] and result.retired == ["seg-0002"]
    assert result.split == [] and result.merged == []


def test_noise_on_either_side_is_left_out_of_denominators() -> None:
    # 40 of the segment's 100 members become noise, and 50 previously-noise retailers join the cluster:
    # over retailers non-noise on both sides the segment and the cluster are the same 60 retailers.
    prev = series({"seg-0001": range(100)}, noise=range(100, 150))
    new = series({0: list(range(60)) + list(range(100, 150))}, noise=range(60, 100))
    result = match_clusters(prev, new, SegmentIdState(2))
    assert result.continued == [{"segment": "seg-0001", "cluster": 0, "jaccard": 1.0}]


def test_masked_assignment_keeps_an_acceptable_pair_raw_jaccard_would_trade_away() -> None:
    # J(A,X)=0.5 is acceptable; raw-Jaccard optimum would be A->Y (1/3) + B->X (1/3), losing the continuation.
    prev = series({"seg-0001": range(1, 7), "seg-0002": [7, 8]})
    new = series({0: [1, 2, 3, 4, 7, 8], 1: [5, 6]})
    result = match_clusters(prev, new, SegmentIdState(3))
    assert result.continued == [{"segment": "seg-0001", "cluster": 0, "jaccard": 0.5}]
    assert result.retired == ["seg-0002"]


def test_thresholds_come_from_params() -> None:
    prev = series({"seg-0001": range(100)})
    new = series({0: range(70), 1: range(70, 100)})
    assert match_clusters(prev, new, SegmentIdState(2)).continued[0]["segment"] == "seg-0001"
    strict = match_clusters(prev, new, SegmentIdState(2), MatchParams(min_jaccard=0.8, stable_jaccard=0.9))
    assert strict.continued == [] and strict.retired == ["seg-0001"]
    no_split = match_clusters(prev, new, SegmentIdState(2), MatchParams(split_min_share=0.4))
    assert no_split.split == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"new_labels": pd.Series([0, 1.5], index=[1, 2])}, "new_labels: shop_id 2 has label 1.5"),
        ({"new_labels": pd.Series([0, -2], index=[1, 2])}, "labels must be integers >= -1"),
        ({"new_labels": pd.Series([0, 1], index=[1, 1])}, "new_labels: shop_id 1 appears more than once"),
        ({"new_labels": pd.Series(["a", "b"], index=[1, 2])}, "new_labels: cluster labels must be integers"),
        ({"new_labels": [0, 1]}, "new_labels: must be a pandas Series"),
        ({"previous": pd.Series(["cluster-1"], index=[1])}, "previous: segment id: expected 'seg-NNNN'"),
        ({"previous": pd.Series(["seg-0009"], index=[1])}, "state.next_number: is 3 but previous already uses"),
        ({"state": 3}, "state: must be a SegmentIdState"),
    ],
)
def test_bad_input_names_field_and_problem(kwargs: dict, message: str) -> None:
    args = {"previous": pd.Series(["seg-0001"], index=[1]), "new_labels": pd.Series([0], index=[1]),
            "state": SegmentIdState(3)} | kwargs
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        match_clusters(**args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"min_jaccard": 1.5}, "MatchParams.min_jaccard"), ({"stable_jaccard": 0.4}, "MatchParams.stable_jaccard"),
     ({"split_min_share": 0.6}, "MatchParams.split_min_share"), ({"noise_grace": 1}, "MatchParams.noise_grace")],
)
def test_bad_params_name_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MatchParams(**kwargs)


def test_lineage_has_exactly_the_contract_fields_and_validates_against_asyncapi() -> None:
    prev = series({"seg-0001": range(60), "seg-0002": range(60, 100), "seg-0003": range(100, 140)})
    new = series({np.int64(2): range(100), np.int64(0): range(100, 125), np.int64(1): range(125, 140)})
    lineage = match_clusters(prev, new, SegmentIdState(4)).to_lineage(7, 6)
    assert tuple(lineage) == LINEAGE_FIELDS
    assert set(lineage) == {"model_version", "previous_version", "continued", "born", "retired", "split", "merged"}
    assert all(set(c) == {"segment", "cluster", "jaccard"} for c in lineage["continued"])
    assert all(set(s) == {"from", "into"} for s in lineage["split"] + lineage["merged"])
    assert json.loads(json.dumps(lineage)) == lineage  # plain JSON types only
    schema = yaml.safe_load(ASYNCAPI.read_text())["components"]["messages"]["segmentLineage"]["payload"]
    validate(lineage, schema)
    assert set(schema["required"]) == set(LINEAGE_FIELDS)
    with pytest.raises(ValueError, match="model_version: must be an integer"):
        match_clusters(prev, new, SegmentIdState(4)).to_lineage("7", 6)


# --- properties over random partitions ---------------------------------------------------------------------------

@st.composite
def retrain(draw: st.DrawFn) -> tuple[pd.Series, pd.Series]:
    """A previous segmentation and a new labelling that mostly follows it, with moves, noise and newcomers."""
    n = draw(st.integers(5, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k = draw(st.integers(1, 6))
    prev_labels = rng.integers(-1, k, n)
    segment_ids = [format_segment_id(i) for i in rng.choice(np.arange(1, 20), size=k, replace=False)]
    prev = pd.Series([segment_ids[c] if c >= 0 else None for c in prev_labels], index=range(n), dtype=object)
    move = rng.random(n) < draw(st.floats(0, 1))
    new = np.where(move, rng.integers(-1, k + 2, n), prev_labels)
    shops = np.concatenate([np.arange(n), np.arange(1000, 1000 + draw(st.integers(0, 10)))])
    new = np.concatenate([new, rng.integers(-1, k + 2, len(shops) - n)])
    keep = rng.random(len(shops)) < 0.9  # some retailers leave
    return prev, pd.Series(new[keep], index=shops[keep], dtype=np.int64)


@settings(max_examples=100, deadline=None)
@given(case=retrain(), data=st.data())
def test_relabelling_new_clusters_changes_no_outcome(case: tuple[pd.Series, pd.Series], data: st.DataObject) -> None:
    prev, new = case
    state = SegmentIdState(20)
    labels = sorted(set(new[new >= 0]))
    targets = data.draw(st.lists(st.integers(0, 10**6), min_size=len(labels), max_size=len(labels), unique=True))
    perm = dict(zip(labels, targets, strict=True)) | {-1: -1}
    relabelled = new.map(perm).astype(np.int64).sample(frac=1.0, random_state=0)  # row order shuffled too
    a, b = match_clusters(prev, new, state), match_clusters(prev, relabelled, state)
    assert b.cluster_to_segment == {perm[c]: s for c, s in a.cluster_to_segment.items()}
    assert b.continued == [c | {"cluster": perm[c["cluster"]]} for c in a.continued]
    assert (b.born, b.retired, b.split, b.merged, b.stable, b.state) == (
        a.born, a.retired, a.split, a.merged, a.stable, a.state)


@settings(max_examples=100, deadline=None)
@given(case=retrain())
def test_same_partition_relabelled_continues_everything(case: tuple[pd.Series, pd.Series]) -> None:
    prev, _ = case
    codes = {s: i * 7 + 3 for i, s in enumerate(sorted(set(prev.dropna())))}
    same = prev.map(lambda s: codes.get(s, -1)).astype(np.int64)
    result = match_clusters(prev, same, SegmentIdState(20))
    assert sorted(c["segment"] for c in result.continued) == sorted(codes)
    assert all(c["jaccard"] == 1.0 for c in result.continued)
    assert (result.born, result.retired, result.split, result.merged) == ([], [], [], [])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rounds=st.integers(2, 8))
def test_ids_are_never_reused_across_random_retrains(seed: int, rounds: int) -> None:
    rng = np.random.default_rng(seed)
    shops = np.arange(60)
    labels = pd.Series(rng.integers(-1, 4, 60), index=shops)
    result = match_clusters(None, labels, SegmentIdState())
    issued, retired = set(result.born), set()
    for _ in range(rounds):
        previous = labels.map(lambda c, m=result.cluster_to_segment: m.get(c)).astype(object)
        move = rng.random(60) < rng.random()
        labels = pd.Series(np.where(move, rng.integers(-1, 6, 60), labels), index=shops)
        before = result.state.next_number
        result = match_clusters(previous, labels, result.state)
        live = list(result.cluster_to_segment.values())
        assert len(live) == len(set(live))  # one segment per cluster
        new_ids = set(live) - set(previous.dropna())
        assert not new_ids & issued and not set(live) & retired  # fresh ids only, retired never come back
        assert {int(s[4:]) for s in new_ids} == set(range(before, result.state.next_number))
        assert set(result.retired) == set(previous.dropna()) - set(live)
        issued |= new_ids
        retired |= set(result.retired)


def test_exact_tie_is_settled_the_same_way_whatever_the_numbering() -> None:
    # two segments, each exactly half of one cluster: both pairs are acceptable (J = 0.5, all members sent)
    prev = series({"seg-0001": [1, 2], "seg-0002": [3, 4], "seg-0003": range(10, 20)})
    outcomes = set()
    for x, y in [(0, 1), (1, 0), (9, 4), (4, 9)]:
        result = match_clusters(prev, series({x: [1, 2, 3, 4], y: range(10, 20)}), SegmentIdState(4))
        winner = result.cluster_to_segment[x]
        assert winner in {"seg-0001", "seg-0002"} and result.retired == sorted({"seg-0001", "seg-0002"} - {winner})
        assert result.merged == [{"from": ["seg-0001", "seg-0002"], "into": winner}]
        outcomes.add(winner)
    assert len(outcomes) == 1
