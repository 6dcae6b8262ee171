"""The relabel (pure): batch prediction equals hdbscan's, identity across retrains, ineligible and new retailers,
names and ids, the online decision, profiles."""

from __future__ import annotations

import hdbscan
import numpy as np
import pandas as pd
import pytest

from services.assigner.book import Book, Serving, previous_frame
from services.assigner.predict import approximate_predict, predict
from services.assigner.profiles import segment_profile
from services.assigner.relabel import assign_online, mark_ineligible, relabel
from shared.segments import MatchParams, parse_segment_id
from tests.helpers import quick_bundle, synthetic


@pytest.fixture(scope="module")
def data() -> dict:
    _, features = synthetic()
    return {"features": features, "b0": quick_bundle(features, seed=0), "b1": quick_bundle(features, seed=1)}


# --- batch approximate_predict ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed,min_samples,min_cluster_size", [(0, None, 30), (1, 5, 40), (2, 12, 20), (3, None, 60)])
def test_batch_prediction_equals_hdbscan(seed: int, min_samples: int | None, min_cluster_size: int) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (5, 4))
    train = centres[rng.integers(0, 5, 1500)] + rng.normal(0, 1, (1500, 4))
    model = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, prediction_data=True).fit(train)
    points = np.vstack([train[:200], train[:300] + rng.normal(0, 0.5, (300, 4)), rng.normal(0, 10, (200, 4))])
    expected_labels, expected_strengths = hdbscan.approximate_predict(model, points)
    labels, strengths = approximate_predict(model, points)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_allclose(strengths, expected_strengths, rtol=0, atol=1e-12)
    assert (labels == -1).any() and (labels >= 0).any()
    one_label, one_strength = approximate_predict(model, points[250:251])
    assert (one_label[0], one_strength[0]) == (labels[250], strengths[250])


def test_prediction_input_errors_name_the_problem(data: dict) -> None:
    model = data["b0"].latent_clusterer.model_
    with pytest.raises(ValueError, match="points: expected 6 columns, got 2"):
        approximate_predict(model, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="points: expected a 2-D array"):
        approximate_predict(model, np.zeros(6))
    labels, strengths = approximate_predict(model, np.zeros((0, 6)))
    assert labels.shape == strengths.shape == (0,)


# --- relabel ---------------------------------------------------------------------------------------------------
def test_first_model_issues_ids_by_size_and_reports_new_retailers(data: dict) -> None:
    first = relabel(Book(), data["features"], data["b0"], 1)
    out = first.assignments
    assert (out["status"] == "assigned").sum() + (out["status"] == "noise").sum() == len(data["features"])
    assert first.lineage["born"] == [s.segment_id for s in first.segments]
    sizes = [s.size for s in first.segments]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == (out["status"] == "assigned").sum()
    assert {c["reason"] for c in first.changes} == {"new-retailer"}
    assert len(first.changes) == (out["status"] == "assigned").sum()
    assert all(s.first_version == s.last_version == 1 and s.name for s in first.segments)
    assert first.state.next_number == len(first.segments) + 1


def test_identical_model_changes_nobody_and_keeps_names(data: dict) -> None:
    first = relabel(Book(), data["features"], data["b0"], 1)
    again = relabel(first.book(), data["features"], data["b0"], 2)
    assert again.changes == [] and not again.assignments["moved"].any()
    assert [c["jaccard"] for c in again.lineage["continued"]] == [1.0] * len(first.segments)
    assert (again.lineage["born"], again.lineage["retired"]) == ([], [])
    assert [(s.segment_id, s.name, s.first_version) for s in again.segments] == \
        [(s.segment_id, s.name, 1) for s in first.segments]
    pd.testing.assert_series_equal(again.assignments["segment"], first.assignments["segment"])


def test_reseeded_model_keeps_ids_and_never_reuses_them(data: dict) -> None:
    first = relabel(Book(), data["features"], data["b0"], 1)
    second = relabel(first.book(), data["features"], data["b1"], 2)
    had = first.assignments["segment"].notna()
    kept = (second.assignments.loc[had, "segment"] == first.assignments.loc[had, "segment"]).mean()
    assert kept >= 0.95
    moved = second.assignments["segment"].fillna("-") != first.assignments["segment"].fillna("-")
    assert {c["shop_id"] for c in second.changes} == set(moved[moved].index)
    used = {parse_segment_id(s.segment_id) for s in first.segments}
    born = {parse_segment_id(s) for s in second.lineage["born"]}
    assert not used & born and second.state.next_number > max(used | born | {0})


def test_retailers_leaving_and_joining(data: dict) -> None:
    features = data["features"]
    first = relabel(Book(), features.iloc[:-40], data["b0"], 1)
    assigned = first.assignments.index[first.assignments["status"] == "assigned"]
    leaving = assigned[:5]
    second = relabel(first.book(), features.drop(index=leaving), data["b0"], 2)
    rows = second.assignments.loc[leaving]
    assert (rows["status"] == "ineligible").all() and rows["segment"].isna().all() and rows["changed"].all()
    events = {c["shop_id"]: c for c in second.changes}
    assert all(events[s]["to_segment"] is None and events[s]["status"] == "ineligible" for s in leaving)
    newcomers = features.index[-40:]
    joined = second.assignments.loc[newcomers]
    assert set(joined.loc[joined["changed"], "reason"]) == {"new-retailer"}
    back = relabel(second.book(), features, data["b0"], 3)
    assert (back.assignments.loc[leaving, "reason"] == "retrain").all()  # known retailers, not new ones
    assert (back.assignments.loc[leaving, "segment"] == first.assignments.loc[leaving, "segment"]).all()


def test_bad_input_names_the_field(data: dict) -> None:
    with pytest.raises(ValueError, match="version: must be a positive integer"):
        relabel(Book(), data["features"], data["b0"], 0)
    with pytest.raises(ValueError, match=r"features: missing column\(s\) \['sales_trend'\]"):
        relabel(Book(), data["features"].drop(columns=["sales_trend"]), data["b0"], 1)
    with pytest.raises(ValueError, match=r"states\.status: shop_id 'x' has 'lost'"):
        previous_frame(pd.DataFrame({"segment": [None], "status": ["lost"], "strength": [0.0]}, index=["x"]))


# --- online ----------------------------------------------------------------------------------------------------
def test_online_decision_matches_the_relabel_rules(data: dict) -> None:
    features, bundle = data["features"], data["b0"]
    first = relabel(Book(), features, bundle, 1)
    serving = first.serving
    book = first.book().assignments
    shops = features.index[:60]
    same = assign_online(book.loc[shops], features.loc[shops], bundle, serving)
    assert not same["changed"].any() and (same["segment"].fillna("-") == book.loc[shops, "segment"].fillna("-")).all()
    new = assign_online(None, features.loc[shops], bundle, serving)
    assert set(new.loc[new["changed"], "reason"]) == {"new-retailer"}
    assert (new["status"] == first.assignments.loc[shops, "status"]).all()
    # with online moves on, a retailer held strongly in another segment moves ("features"), a weak one stays
    other = next(s for s in serving.names if s != book.loc[shops[0], "segment"])
    moved_book = book.loc[shops].copy()
    assigned = moved_book.index[moved_book["status"] == "assigned"]
    moved_book.loc[assigned, "segment"] = other
    out = assign_online(moved_book, features.loc[shops], bundle, serving, MatchParams(weak_strength=0.1,
                                                                                      online_moves=True))
    strong = out.loc[assigned]
    expected_change = (first.assignments.loc[assigned, "segment"] != other) & \
        (first.assignments.loc[assigned, "strength"] >= 0.1)
    assert expected_change.any() and (strong["changed"] == expected_change).all()
    assert set(strong.loc[strong["changed"], "reason"]) <= {"features"}
    # by default (online_moves off) every one of them is held in its segment with its strength until a retrain
    held = assign_online(moved_book, features.loc[shops], bundle, serving).loc[assigned]
    assert not held["changed"].any() and (held["segment"] == other).all()
    assert held.loc[expected_change, "held"].all()
    np.testing.assert_allclose(held["strength"], moved_book.loc[assigned, "strength"].astype(float))
    # noise and new retailers still change online: a retailer that was noise gets its segment now
    noisy_book = book.loc[shops].copy()
    noisy_book.loc[assigned[:5], ["segment", "status", "strength"]] = [None, "noise", 0.0]
    back = assign_online(noisy_book, features.loc[shops], bundle, serving).loc[assigned[:5]]
    assert back["changed"].all() and (back["segment"] == first.assignments.loc[assigned[:5], "segment"]).all()


def test_ineligible_marks_only_known_retailers(data: dict) -> None:
    first = relabel(Book(), data["features"], data["b0"], 1)
    book = first.book().assignments
    assigned = book.index[book["status"] == "assigned"][:3]
    out = mark_ineligible(book, pd.Index([*assigned, "never-seen"]), "features")
    assert list(out.index) == list(assigned) and out["changed"].all() and (out["reason"] == "features").all()
    assert (out["status"] == "ineligible").all() and out["moved"].all()


def test_serving_map_round_trips_through_json_and_segments(data: dict) -> None:
    first = relabel(Book(), data["features"], data["b0"], 1)
    assert Serving.from_json(first.serving.to_json()) == first.serving
    rebuilt = Serving.from_segments(1, "behaviour-v2", {s.segment_id: s for s in first.segments})
    assert rebuilt == first.serving


# --- profiles --------------------------------------------------------------------------------------------------
def test_profiles_summarise_members(data: dict) -> None:
    features = data["features"]
    profile = segment_profile(features.iloc[:50], "behaviour-v2", list(features.columns))
    assert len(profile["seasonality"]) == 12 and abs(sum(profile["seasonality"]) - 1) < 1e-5
    assert profile["features"]["activity_ratio"]["mean"] == pytest.approx(features["activity_ratio"].iloc[:50].mean())
    assert set(profile["traits"]) == {"growth", "volatility", "assortment", "activity"}
    flat = segment_profile(pd.DataFrame({"a": [1.0, 2.0]}), "unknown-set", ["a"])
    assert flat["seasonality"] == [pytest.approx(1 / 12, abs=1e-6)] * 12
    with pytest.raises(ValueError, match="members: a profile needs at least one member"):
        segment_profile(features.iloc[:0], "behaviour-v2", list(features.columns))


def test_predict_uses_the_bundle_encoder(data: dict) -> None:
    bundle, features = data["b0"], data["features"]
    labels, strengths = predict(bundle, features.iloc[:, ::-1])  # columns by name, in any order
    # computed without the bundle's own assign: its scaler and encoder by hand, then hdbscan's own prediction
    latent = bundle.encoder.transform(bundle.scaler.transform(features[bundle.columns].to_numpy(dtype=float)))
    expected_labels, expected_strengths = hdbscan.approximate_predict(bundle.latent_clusterer.model_, latent)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_allclose(strengths, expected_strengths, rtol=0, atol=1e-12)
    assert (labels >= 0).sum() > len(labels) // 2 and len(set(labels.tolist()) - {-1}) >= 2
