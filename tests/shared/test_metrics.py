"""clustering_report: hand-checked values, JSON output, input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from shared import metrics
from shared.metrics import clustering_report, gini


def test_counts_shares_and_gini_by_hand() -> None:
    report = clustering_report([0, 0, 0, 1, -1])
    assert report["n"] == 5 and report["clusters"] == 2 and report["noise"] == 1
    assert report["noise_ratio"] == pytest.approx(0.2)
    assert report["largest_share"] == pytest.approx(0.6)
    assert report["sizes"] == {"0": 3, "1": 1}
    assert report["gini"] == pytest.approx(0.25)  # sizes 1 and 3: mean |diff| 1 / (2 * mean 2)
    assert report["silhouette"] is None and report["dbcv"] is None and report["ari"] is None


def test_gini_extremes() -> None:
    assert gini([5, 5, 5]) == 0.0
    assert gini([0, 0, 0, 100]) == pytest.approx(0.75)
    assert gini([]) == 0.0


def test_all_noise() -> None:
    report = clustering_report([-1, -1, -1], X=np.zeros((3, 2)), truth=["a", "b", "a"])
    assert report["clusters"] == 0 and report["noise_ratio"] == 1.0 and report["largest_share"] == 0.0
    assert report["silhouette"] is None and report["dbcv"] is None
    assert report["ari"] == 0.0


def test_truth_scores_noise_as_its_own_label() -> None:
    truth = np.repeat(["a", "b", "c"], 20)
    perfect = np.repeat([2, 0, 1], 20)  # permuted ids are still a perfect match
    assert clustering_report(perfect, truth=truth)["ari"] == pytest.approx(1.0)
    assert clustering_report(perfect, truth=truth)["ami"] == pytest.approx(1.0)
    noisy = perfect.copy()
    noisy[::2] = -1  # half the points called noise: noise is one extra label, so the score drops
    report = clustering_report(noisy, truth=truth)
    assert 0 < report["ari"] < 0.9 and 0 < report["ami"] < 0.9


def test_silhouette_and_dbcv_on_separated_blobs_are_high_and_json() -> None:
    X, y = make_blobs(n_samples=900, n_features=4, centers=3, cluster_std=0.5, random_state=0)
    labels = y.copy()
    labels[:30] = -1
    report = clustering_report(labels, X=X, truth=y)
    assert report["silhouette"] > 0.7
    assert report["dbcv"] is not None and report["dbcv"] > 0.3
    assert clustering_report(labels, X=X, dbcv=0.123)["dbcv"] == 0.123
    scrambled = np.random.default_rng(0).permutation(labels)
    assert clustering_report(scrambled, X=X)["silhouette"] < 0.1
    json.dumps(report, allow_nan=False)


def test_large_inputs_are_sampled_deterministically(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = make_blobs(n_samples=1_500, n_features=3, centers=4, random_state=1)
    full = clustering_report(y, X=X)
    monkeypatch.setattr(metrics, "SILHOUETTE_SAMPLE", 400)  # the production limits are 10k / 2k points
    monkeypatch.setattr(metrics, "DBCV_SAMPLE", 300)
    first, second = clustering_report(y, X=X), clustering_report(y, X=X)
    assert first["silhouette"] == second["silhouette"] and first["dbcv"] == second["dbcv"]
    assert first["silhouette"] != full["silhouette"]  # a sample was used ...
    assert first["silhouette"] == pytest.approx(full["silhouette"], abs=0.05)  # ... and it is representative


def test_bad_input_names_field() -> None:
    with pytest.raises(ValueError, match="labels: expected a 1-D"):
        clustering_report(np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="labels: labels must be integers"):
        clustering_report([0.5, 1.0])
    with pytest.raises(ValueError, match="X: expected shape"):
        clustering_report([0, 1], X=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="X: contains NaN"):
        clustering_report([0, 1], X=np.array([[0.0], [np.nan]]))
    with pytest.raises(ValueError, match="truth: expected 2"):
        clustering_report([0, 1], truth=[1, 2, 3])
