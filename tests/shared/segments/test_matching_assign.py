"""Per-retailer outcome: changes only when the label really moved, hysteresis rules, and the stability bars
on simulated retrains (same data reseeded: >= 98 % keep their id; drift: >= 90 % of drifted retailers change)."""

from __future__ import annotations

import hdbscan
import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from shared.segments import MatchParams, SegmentIdState, assign_segments, match_clusters


def labels_of(groups: dict[int, range | list[int]], noise: range | list[int] = ()) -> pd.Series:
    data = {shop: label for label, shops in groups.items() for shop in shops} | dict.fromkeys(noise, -1)
    return pd.Series(data, dtype=np.int64)


def first_model(labels: pd.Series, strength: float = 0.9) -> tuple[pd.DataFrame, SegmentIdState]:
    """The assignment frame after a first model, as the caller would persist it."""
    result = match_clusters(None, labels, SegmentIdState())
    out = assign_segments(None, labels, pd.Series(strength, index=labels.index), result)
    return out, result.state


def retrain(previous: pd.DataFrame, labels: pd.Series, strengths: pd.Series, state: SegmentIdState,
            params: MatchParams | None = None) -> pd.DataFrame:
    result = match_clusters(previous.set_index("shop_id")["segment"], labels, state, params)
    return assign_segments(previous, labels, strengths, result, params).set_index("shop_id")


def test_first_model_reports_new_retailers_and_noise() -> None:
    out, state = first_model(labels_of({3: range(10), 8: range(10, 14)}, noise=[14]))
    assert state == SegmentIdState(3)
    row = out.set_index("shop_id")
    assert row.loc[0, "segment"] == "seg-0001" and row.loc[10, "segment"] == "seg-0002"
    assert row.loc[0, "reason"] == "new-retailer" and bool(row.loc[0, "changed"])
    assert row.loc[14].to_dict() == {"segment": None, "status": "noise", "strength": 0.0, "changed": False,
                                     "from_segment": None, "reason": None, "held": False}


def test_hold_switches_holds_even_strong_moves_but_lets_noise_and_newcomers_join() -> None:
    """The online path without online moves: a strong switch between live segments is held; a retailer that was
    noise joins its segment and a newcomer gets one, unless its strength is weak (it would flap back)."""
    previous, state = first_model(labels_of({0: range(30), 1: range(30, 50)}, noise=[50]))
    labels = labels_of({0: [*range(29), 50, 51, 52], 1: [29, *range(30, 50)]})  # 29: A->B, 50: noise->A, 51-52: new
    result = match_clusters(previous.set_index("shop_id")["segment"], labels, state)
    strong = pd.Series(0.95, index=labels.index)
    weak = strong.copy()
    weak[52] = 0.02
    out = assign_segments(previous, labels, strong, result, reason="features", hold_switches=True).set_index("shop_id")
    assert out.loc[29, ["segment", "changed", "held"]].tolist() == ["seg-0001", False, True]
    assert out.loc[50, ["segment", "changed", "reason"]].tolist() == ["seg-0001", True, "features"]
    assert out.loc[51, ["segment", "reason"]].tolist() == ["seg-0001", "new-retailer"]
    joined = assign_segments(previous, labels, weak, result, reason="features", hold_switches=True).set_index("shop_id")
    assert joined.loc[52, ["segment", "status", "changed", "held"]].tolist() == [None, "noise", False, True]
    moved = assign_segments(previous, labels, strong, result, reason="features").set_index("shop_id")
    assert moved.loc[29, ["segment", "changed"]].tolist() == ["seg-0002", True]


def test_hold_switches_keeps_a_weak_member_that_falls_into_noise() -> None:
    """Online without online moves, a retailer whose strength sank to 0.02 in its segment and then reads as noise
    keeps its segment (the retrain decides); a relabel reports that weak fall into noise at once."""
    previous, state = first_model(labels_of({0: range(30), 1: range(30, 50)}))
    previous.loc[previous["shop_id"] == 3, "strength"] = 0.02
    labels = labels_of({0: [*range(3), *range(4, 30)], 1: range(30, 50)}, noise=[3])
    result = match_clusters(previous.set_index("shop_id")["segment"], labels, state)
    strengths = pd.Series(0.9, index=labels.index)
    online = assign_segments(previous, labels, strengths, result, reason="features", hold_switches=True)
    assert online.set_index("shop_id").loc[3, ["segment", "changed", "held"]].tolist() == ["seg-0001", False, True]
    relabel = assign_segments(previous, labels, strengths, result).set_index("shop_id")
    assert relabel.loc[3, ["segment", "status", "changed"]].tolist() == [None, "noise", True]


def test_same_partition_relabelled_changes_nobody() -> None:
    previous, state = first_model(labels_of({0: range(30), 1: range(30, 50)}, noise=[50]))
    out = retrain(previous, labels_of({5: range(30), 2: range(30, 50)}, noise=[50]),
                  pd.Series(0.8, index=range(51)), state)
    assert not out["changed"].any() and not out["held"].any()
    assert (out["from_segment"].iloc[:50] == out["segment"].iloc[:50]).all()


def test_strong_move_changes_weak_move_is_held() -> None:
    previous, state = first_model(labels_of({0: range(30), 1: range(30, 50)}))
    labels = labels_of({0: [*range(28), 30], 1: [28, 29, *range(31, 50)]})  # 28, 29 -> B; 30 -> A
    strengths = pd.Series(0.9, index=range(50))
    strengths[[28, 30]] = 0.02  # below weak_strength 0.05
    out = retrain(previous, labels, strengths, state)
    assert out.loc[29, ["segment", "from_segment", "changed", "reason"]].tolist() == [
        "seg-0002", "seg-0001", True, "retrain"]
    for shop, kept in [(28, "seg-0001"), (30, "seg-0002")]:
        assert out.loc[shop, ["segment", "changed", "held", "status"]].tolist() == [kept, False, True, "assigned"]
        assert out.loc[shop, "strength"] == 0.02
    off = retrain(previous, labels, strengths, state, MatchParams(weak_strength=0.0))
    assert off.loc[[28, 29, 30], "changed"].all() and not off["held"].any()


def test_one_noisy_retrain_holds_a_stable_retailer_the_second_drops_it() -> None:
    previous, state = first_model(labels_of({0: range(30)}))
    once = retrain(previous, labels_of({0: range(1, 30)}, noise=[0]), pd.Series(0.9, index=range(30)), state)
    assert once.loc[0, ["segment", "status", "strength", "changed", "held"]].tolist() == [
        "seg-0001", "assigned", 0.0, False, True]
    twice = retrain(once.reset_index(), labels_of({0: range(1, 30)}, noise=[0]), pd.Series(0.9, index=range(30)),
                    state)
    assert twice.loc[0, ["segment", "status", "changed", "from_segment", "reason", "held"]].tolist() == [
        None, "noise", True, "seg-0001", "retrain", False]
    back = retrain(once.reset_index(), labels_of({0: range(30)}), pd.Series(0.9, index=range(30)), state)
    assert not back.loc[0, "changed"] and back.loc[0, "strength"] == 0.9
    off = retrain(previous, labels_of({0: range(1, 30)}, noise=[0]), pd.Series(0.9, index=range(30)), state,
                  MatchParams(noise_grace=False))
    assert off.loc[0, ["segment", "status", "changed"]].tolist() == [None, "noise", True]


def test_the_noise_grace_holds_only_a_retailer_whose_noise_sits_by_its_segment() -> None:
    previous, state = first_model(labels_of({0: range(30), 1: range(30, 50)}))
    labels = labels_of({0: range(2, 30), 1: range(30, 50)}, noise=[0, 1])
    result = match_clusters(previous.set_index("shop_id")["segment"], labels, state)
    nearest = pd.Series(-1, index=labels.index)
    nearest[[0, 1]] = [0, 1]  # 0 sits by its own segment's cluster, 1 by the other segment's (it is moving away)
    out = assign_segments(previous, labels, pd.Series(0.9, index=labels.index), result,
                          nearest=nearest).set_index("shop_id")
    assert out.loc[0, ["segment", "held", "changed"]].tolist() == ["seg-0001", True, False]
    assert out.loc[1, ["segment", "status", "changed"]].tolist() == [None, "noise", True]


def test_weak_members_and_members_of_retired_segments_fall_into_noise_at_once() -> None:
    previous, state = first_model(labels_of({0: range(30), 1: range(30, 40)}))
    previous.loc[previous["shop_id"] == 0, "strength"] = 0.02
    # shop 0 (weak) becomes noise; segment B (30-39) dissolves into noise entirely, so it retires
    out = retrain(previous, labels_of({0: range(1, 30)}, noise=[0, *range(30, 40)]), pd.Series(0.9, index=range(40)),
                  state)
    assert out.loc[0, ["segment", "status", "changed"]].tolist() == [None, "noise", True]
    assert out.loc[range(30, 40), "changed"].all() and out.loc[range(30, 40), "segment"].isna().all()


def test_previously_noisy_and_new_retailers() -> None:
    previous, state = first_model(labels_of({0: range(30)}, noise=[30]))
    labels = labels_of({0: [*range(30), 30, 99]})
    out = retrain(previous, labels, pd.Series(0.05, index=labels.index), state)
    assert out.loc[30, ["segment", "changed", "from_segment", "reason"]].tolist() == [
        "seg-0001", True, None, "retrain"]
    assert out.loc[99, ["segment", "changed", "reason"]].tolist() == ["seg-0001", True, "new-retailer"]
    result = match_clusters(previous.set_index("shop_id")["segment"], labels, state)
    features = assign_segments(previous, labels, pd.Series(0.5, index=labels.index), result, reason="features")
    assert features.set_index("shop_id").loc[30, "reason"] == "features"


@pytest.mark.parametrize(
    ("previous", "message"),
    [
        (pd.DataFrame({"shop_id": [1], "segment": [None], "status": ["assigned"], "strength": [0.5]}),
         "previous_assignment.segment: shop_id 1 must be set exactly when status is 'assigned'"),
        (pd.DataFrame({"shop_id": [1], "segment": ["seg-0001"], "status": ["gone"], "strength": [0.5]}),
         "previous_assignment.status: shop_id 1 must be one of"),
        (pd.DataFrame({"shop_id": [1], "segment": ["seg-0001"], "status": ["assigned"], "strength": [1.5]}),
         "previous_assignment.strength: shop_id 1 must be a number in"),
        (pd.DataFrame({"shop_id": [1], "segment": ["seg-0001"], "status": ["assigned"]}),
         "previous_assignment: missing column 'strength'"),
        (pd.DataFrame({"shop_id": [1], "segment": ["A"], "status": ["assigned"], "strength": [0.5]}),
         "previous_assignment.segment: segment id: expected 'seg-NNNN'"),
        (pd.DataFrame({"shop_id": [1, 1], "segment": [None] * 2, "status": ["noise"] * 2, "strength": [0.0] * 2}),
         "previous_assignment: shop_id 1 appears more than once"),
    ],
)
def test_bad_previous_assignment_names_field(previous: pd.DataFrame, message: str) -> None:
    labels = labels_of({0: [1]})
    result = match_clusters(None, labels, SegmentIdState(2))
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        assign_segments(previous, labels, pd.Series([0.5], index=[1]), result)


def test_bad_strengths_and_unknown_clusters_are_named() -> None:
    labels = labels_of({0: [1, 2]})
    result = match_clusters(None, labels, SegmentIdState())
    with pytest.raises(ValueError, match="new_strengths: shop_id 2 has strength nan"):
        assign_segments(None, labels, pd.Series([0.5, np.nan], index=[1, 2]), result)
    with pytest.raises(ValueError, match="new_strengths: no strength for shop_id 2"):
        assign_segments(None, labels, pd.Series([0.5], index=[1]), result)
    with pytest.raises(ValueError, match="new_labels: cluster 7 has no segment"):
        assign_segments(None, labels_of({7: [1, 2]}), pd.Series([0.5, 0.5], index=[1, 2]), result)
    with pytest.raises(ValueError, match="reason: must be one of"):
        assign_segments(None, labels, pd.Series([0.5, 0.5], index=[1, 2]), result, reason="manual")


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), move=st.floats(0, 1), weak=st.floats(0, 1))
def test_outcome_invariants_and_numbering_independence(seed: int, move: float, weak: float) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    first = pd.Series(rng.integers(-1, 4, n), index=range(n))
    previous, state = first_model(first)
    previous["strength"] = np.where(previous["segment"].isna(), 0.0, rng.random(n))
    labels = pd.Series(np.where(rng.random(n) < move, rng.integers(-1, 5, n), first), index=range(n))
    strengths = pd.Series(rng.random(n), index=range(n))
    params = MatchParams(weak_strength=weak)
    out = retrain(previous, labels, strengths, state, params)
    perm = {c: 1000 - 7 * c for c in range(5)} | {-1: -1}
    relabelled = retrain(previous, labels.map(perm).astype(np.int64), strengths, state, params)
    pd.testing.assert_frame_equal(out, relabelled)
    assert (out["changed"] == (out["segment"].fillna("") != out["from_segment"].fillna(""))).all()
    assert not (out["held"] & out["changed"]).any()
    assert ((out["status"] == "noise") == out["segment"].isna()).all()
    assert (out.loc[labels == -1, "strength"] == 0).all()
    assert (out.loc[~out["held"] & (labels != -1), "strength"] == strengths[~out["held"] & (labels != -1)]).all()


# --- stability bars on simulated retrains (behaviour blobs, a fresh "latent space" per retrain) --------------------

N, K, DIM = 3000, 6, 6


def simulated_retrain(points: np.ndarray, seed: int) -> tuple[pd.Series, pd.Series]:
    """Jitter, rotate (latent spaces are not comparable), HDBSCAN, then number the clusters at random."""
    rng = np.random.default_rng(seed)
    latent = (points + rng.normal(0, 0.15, points.shape)) @ np.linalg.qr(rng.normal(size=(DIM, DIM)))[0]
    model = hdbscan.HDBSCAN(min_cluster_size=50).fit(latent)
    numbering = rng.permutation(model.labels_.max() + 1) * 3 + 11
    labels = np.where(model.labels_ >= 0, numbering[np.maximum(model.labels_, 0)], -1)
    shops = [f"shop-{i:05d}" for i in range(len(points))]
    return pd.Series(labels, index=shops), pd.Series(model.probabilities_, index=shops)


@pytest.fixture(scope="module")
def world() -> dict:
    rng = np.random.default_rng(2024)
    centres = 6.0 * np.eye(K, DIM)  # well-separated archetypes: the clusterer itself finds the same structure
    archetype = rng.integers(0, K, N)
    points = centres[archetype] + rng.normal(0, 1.0, size=(N, DIM))
    labels, strengths = simulated_retrain(points, seed=1)
    result = match_clusters(None, labels, SegmentIdState())
    first = assign_segments(None, labels, strengths, result)
    return {"rng": rng, "centres": centres, "archetype": archetype, "points": points, "first": first,
            "state": result.state}


def kept_share(previous: pd.DataFrame, now: pd.DataFrame, mask: np.ndarray) -> float:
    return float((now["segment"].to_numpy()[mask] == previous["segment"].to_numpy()[mask]).mean())


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_reseeded_retrain_of_the_same_data_keeps_at_least_98_percent(world: dict, seed: int) -> None:
    labels, strengths = simulated_retrain(world["points"], seed)
    now = retrain(world["first"], labels, strengths, world["state"])
    had = world["first"]["segment"].notna().to_numpy()
    assert kept_share(world["first"], now, had) >= 0.98


def test_drift_changes_at_least_90_percent_of_drifted_retailers(world: dict) -> None:
    rng, points, archetype = world["rng"], world["points"].copy(), world["archetype"]
    drifted = rng.random(N) < 0.1
    target = (archetype + rng.integers(1, K, N)) % K
    points[drifted] = world["centres"][target[drifted]] + rng.normal(0, 1.0, size=(drifted.sum(), DIM))
    labels, strengths = simulated_retrain(points, seed=9)
    now = retrain(world["first"], labels, strengths, world["state"])
    had = world["first"]["segment"].notna().to_numpy()
    scored = drifted & had & (labels.to_numpy() != -1)
    assert scored.sum() > 200
    assert now["changed"].to_numpy()[scored].mean() >= 0.9
    assert kept_share(world["first"], now, ~drifted & had) >= 0.98
