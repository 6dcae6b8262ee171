"""DensityClusterer: HDBSCAN fit, approximate prediction, validation, persistence."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from shared.clustering import NOISE, DensityClusterer


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    return make_blobs(n_samples=600, n_features=5, centers=3, cluster_std=0.6, random_state=3)


@pytest.fixture(scope="module")
def fitted(blobs: tuple[np.ndarray, np.ndarray]) -> DensityClusterer:
    return DensityClusterer(min_cluster_size=30).fit(blobs[0])


def test_finds_planted_clusters(blobs: tuple[np.ndarray, np.ndarray], fitted: DensityClusterer) -> None:
    y = blobs[1]
    assert fitted.n_clusters_ == 3
    assert fitted.labels_.shape == (600,) and fitted.labels_.dtype == np.int64
    assert adjusted_rand_score(y, fitted.labels_) > 0.9
    assert ((fitted.probabilities_ >= 0) & (fitted.probabilities_ <= 1)).all()
    assert fitted.relative_validity_ is not None and 0 < fitted.relative_validity_ <= 1


def test_predict_agrees_with_fit_and_flags_outliers(
    blobs: tuple[np.ndarray, np.ndarray], fitted: DensityClusterer
) -> None:
    X, _ = blobs
    labels, strengths = fitted.predict(X)
    assert labels.shape == strengths.shape == (600,)
    clustered = fitted.labels_ != NOISE
    assert (labels[clustered] == fitted.labels_[clustered]).mean() > 0.98
    far_labels, far_strengths = fitted.predict(np.full((1, 5), 1e3))
    assert far_labels.tolist() == [NOISE] and far_strengths.tolist() == [0.0]
    empty_labels, _ = fitted.predict(np.empty((0, 5)))
    assert empty_labels.shape == (0,)


def test_nearest_cluster_is_the_cluster_a_point_sits_by(
    blobs: tuple[np.ndarray, np.ndarray], fitted: DensityClusterer
) -> None:
    X, _ = blobs
    clustered = fitted.labels_ != NOISE
    assert np.array_equal(fitted.nearest_cluster(X[clustered]), fitted.labels_[clustered])
    centres = np.array([X[fitted.labels_ == label].mean(axis=0) for label in range(fitted.n_clusters_)])
    # a point pulled a third of the way from cluster 0's centre towards cluster 1's sits by cluster 0, two thirds by 1
    between = np.vstack([centres[0] + (centres[1] - centres[0]) * t for t in (1 / 3, 2 / 3)])
    assert fitted.nearest_cluster(between).tolist() == [0, 1]
    assert fitted.nearest_cluster(np.empty((0, 5))).shape == (0,)
    nothing = DensityClusterer(min_cluster_size=35).fit(np.random.default_rng(0).uniform(size=(40, 3)))
    assert nothing.nearest_cluster(np.zeros((2, 3))).tolist() == [NOISE, NOISE]


def test_same_rows_same_order_same_labels(blobs: tuple[np.ndarray, np.ndarray], fitted: DensityClusterer) -> None:
    again = DensityClusterer(min_cluster_size=30).fit(blobs[0])
    assert np.array_equal(again.labels_, fitted.labels_)
    assert np.array_equal(again.probabilities_, fitted.probabilities_)


def test_a_labels_only_fit_gives_the_same_labels_and_cannot_predict() -> None:
    """Selection's resample fits skip the spanning tree and prediction data: labels, noise and strengths unchanged."""
    rng = np.random.default_rng(5)
    x = np.vstack([make_blobs(n_samples=500, n_features=6, centers=5, cluster_std=1.5, random_state=5)[0],
                   rng.uniform(-12, 12, size=(150, 6))])
    full = DensityClusterer(min_cluster_size=20, min_samples=4).fit(x)
    light = DensityClusterer(min_cluster_size=20, min_samples=4, gen_min_span_tree=False,
                             prediction_data=False).fit(x)
    assert full.n_clusters_ >= 2 and (full.labels_ == NOISE).any()  # a case with noise to get wrong
    assert np.array_equal(light.labels_, full.labels_)
    assert np.array_equal(light.probabilities_, full.probabilities_)
    assert light.relative_validity_ is None and full.relative_validity_ is not None
    with pytest.raises(ValueError, match="no prediction data"):
        light.predict(x[:3])


def test_no_cluster_means_everything_is_noise() -> None:
    X = np.random.default_rng(0).uniform(size=(40, 3))
    model = DensityClusterer(min_cluster_size=35).fit(X)
    assert model.n_clusters_ == 0 and model.relative_validity_ is None
    labels, strengths = model.predict(X[:5])
    assert labels.tolist() == [NOISE] * 5 and strengths.tolist() == [0.0] * 5


def test_validation_names_field(fitted: DensityClusterer) -> None:
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match="min_cluster_size"):
        DensityClusterer(min_cluster_size=1).fit(X)
    with pytest.raises(ValueError, match="min_samples"):
        DensityClusterer(min_samples=0).fit(X)
    with pytest.raises(ValueError, match="cluster_selection_method"):
        DensityClusterer(cluster_selection_method="best").fit(X)
    with pytest.raises(ValueError, match="cluster_selection_epsilon"):
        DensityClusterer(cluster_selection_epsilon=-1).fit(X)
    with pytest.raises(ValueError, match="X: contains NaN"):
        DensityClusterer().fit(np.array([[0.0, np.inf], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="X: expected 5 columns"):
        fitted.predict(np.zeros((1, 4)))


def test_sklearn_conventions_and_joblib_round_trip(
    tmp_path: Path, blobs: tuple[np.ndarray, np.ndarray], fitted: DensityClusterer
) -> None:
    params = fitted.get_params()
    assert params["min_cluster_size"] == 30 and params["cluster_selection_method"] == "eom"
    fresh = clone(fitted)
    assert not hasattr(fresh, "labels_")
    joblib.dump(fitted, tmp_path / "c.joblib")
    loaded = joblib.load(tmp_path / "c.joblib")
    for a, b in zip(loaded.predict(blobs[0][:50]), fitted.predict(blobs[0][:50]), strict=True):
        assert np.array_equal(a, b)
