"""The vectorised prediction's early exit and threads: exactly hdbscan's labels, ties and re-queried points
included, and nearest_cluster as its definition (the 2 x min_samples query) gives it."""

from __future__ import annotations

import hdbscan
import numpy as np
import pytest

from shared import hdbscan_predict
from shared.hdbscan_predict import NOISE, approximate_predict, nearest_cluster, predict_with_nearest


@pytest.fixture(scope="module")
def grid() -> tuple[hdbscan.HDBSCAN, np.ndarray]:
    """Training and query points on a coarse grid: many duplicates and equal distances (ties)."""
    rng = np.random.default_rng(7)
    centres = rng.normal(0, 4, (5, 4))
    train = np.round((centres[rng.integers(0, 5, 3000)] + rng.normal(0, 1, (3000, 4))) * 2) / 2
    model = hdbscan.HDBSCAN(min_cluster_size=30, min_samples=8, prediction_data=True).fit(train)
    points = np.vstack([train[:500], rng.integers(-6, 6, (20_000, 4)).astype(float)])
    return model, points


def _reference_nearest(model: hdbscan.HDBSCAN, points: np.ndarray) -> np.ndarray:
    """nearest_cluster by its definition: argmin of mutual reachability over the clustered ones among the
    2 x min_samples nearest training points."""
    data, m = model.prediction_data_, model.min_samples
    distances, indices = data.tree.query(points, k=2 * m)
    mutual = np.maximum(np.maximum(data.core_distances[indices], distances[:, [m]]), distances)
    labels = model.labels_[indices]
    mutual = np.where(labels >= 0, mutual, np.inf)
    best = mutual.argmin(axis=1)
    rows = np.arange(len(points))
    return np.where(np.isfinite(mutual[rows, best]), labels[rows, best], NOISE)


def test_the_short_query_decides_most_points_and_re_queries_ties(grid: tuple[hdbscan.HDBSCAN, np.ndarray]) -> None:
    model, points = grid
    data, m = model.prediction_data_, model.min_samples
    distances, indices = data.tree.query(points, k=m + 1)
    mutual = np.maximum(np.maximum(data.core_distances[indices], distances[:, [m]]), distances)
    _, decided = hdbscan_predict._decided(mutual, distances)
    rows = np.arange(len(points))
    best = mutual.argmin(axis=1)
    at_core = mutual[rows, best] <= distances[:, -1]
    assert 0.5 < decided.mean() < 1.0  # both paths run
    assert (at_core & ~decided).any()  # a best value already final but tied (or at the core distance): re-queried


@pytest.mark.parametrize("threads", [1, 2])
def test_labels_and_strengths_equal_hdbscan_with_ties(grid: tuple[hdbscan.HDBSCAN, np.ndarray], threads: int) -> None:
    model, points = grid
    assert len(points) > hdbscan_predict._CHUNK_ROWS  # several chunks
    expected_labels, expected_strengths = hdbscan.approximate_predict(model, points)
    labels, strengths = approximate_predict(model, points, threads=threads)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_allclose(strengths, expected_strengths, rtol=0, atol=1e-12)
    assert (labels == NOISE).any() and (labels >= 0).any()


@pytest.mark.parametrize("threads", [1, 2])
def test_nearest_cluster_and_the_combined_call_equal_the_definition(
    grid: tuple[hdbscan.HDBSCAN, np.ndarray], threads: int
) -> None:
    model, points = grid
    reference = _reference_nearest(model, points)
    np.testing.assert_array_equal(nearest_cluster(model, points, threads=threads), reference)
    labels, strengths, nearest = predict_with_nearest(model, points, threads=threads)
    expected_labels, expected_strengths = approximate_predict(model, points, threads=1)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_array_equal(strengths, expected_strengths)
    noise = labels == NOISE
    np.testing.assert_array_equal(nearest[noise], reference[noise])
    assert (nearest[~noise] == NOISE).all()
    assert (nearest[noise] >= 0).any()


def test_min_samples_one_takes_a_single_query() -> None:
    rng = np.random.default_rng(3)
    train = np.vstack([rng.normal(0, 1, (300, 3)), rng.normal(6, 1, (300, 3))])
    model = hdbscan.HDBSCAN(min_cluster_size=20, min_samples=1, prediction_data=True).fit(train)
    points = rng.normal(3, 3, (500, 3))
    expected_labels, _ = hdbscan.approximate_predict(model, points)
    np.testing.assert_array_equal(approximate_predict(model, points, threads=2)[0], expected_labels)


def test_threads_must_be_a_positive_integer(grid: tuple[hdbscan.HDBSCAN, np.ndarray]) -> None:
    model, points = grid
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="threads: must be a positive integer"):
            approximate_predict(model, points[:3], threads=bad)
