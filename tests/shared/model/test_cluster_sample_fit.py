"""The latent HDBSCAN fitted on a bounded, evenly spaced sample with the other rows predicted (1M retailers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.clustering import DensityClusterer
from shared.config import settings_default
from shared.model.fit import fit_bundle, raw_baseline_rows
from shared.model.params import ModelParams

pytestmark = pytest.mark.xdist_group("model")


def _blobs(per_blob: int = 300, dims: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(c, 0.4, (per_blob, dims)) for c in (0.0, 5.0, 10.0)])


def test_sample_fit_labels_every_row_fit_ones_for_the_sample_predicted_for_the_rest() -> None:
    X = _blobs()
    sample = raw_baseline_rows(len(X), 400)
    fitted = DensityClusterer(min_cluster_size=20, min_samples=5).fit(X, sample=sample)
    alone = DensityClusterer(min_cluster_size=20, min_samples=5).fit(X[sample])
    assert fitted.fit_rows_ == 400 and len(fitted.labels_) == len(X) == len(fitted.probabilities_)
    assert np.array_equal(fitted.labels_[sample], alone.labels_)
    assert np.array_equal(fitted.probabilities_[sample], alone.probabilities_)
    rest = np.setdiff1d(np.arange(len(X)), sample)
    labels, strengths = alone.predict(X[rest])
    assert np.array_equal(fitted.labels_[rest], labels) and np.array_equal(fitted.probabilities_[rest], strengths)
    assert fitted.n_clusters_ == 3
    for blob in range(3):  # the unsampled members of a blob join its sampled members' cluster
        members = fitted.labels_[blob * 300:(blob + 1) * 300]
        assert (members == np.bincount(members[members >= 0]).argmax()).mean() > 0.95


def test_sample_fit_is_deterministic() -> None:
    X = _blobs(seed=3)
    sample = raw_baseline_rows(len(X), 350)
    runs = [DensityClusterer(min_cluster_size=20).fit(X, sample=sample) for _ in range(2)]
    assert np.array_equal(runs[0].labels_, runs[1].labels_)
    assert np.array_equal(runs[0].probabilities_, runs[1].probabilities_)


def _features(per_blob: int = 300) -> pd.DataFrame:
    X = _blobs(per_blob, dims=6, seed=1)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(6)], index=[f"s{i:05d}" for i in range(len(X))])


def test_default_bound_keeps_the_quality_grid_sizes_fitted_in_full() -> None:
    assert settings_default("cluster_fit_max_rows") == 100_000  # the quality grid goes up to 100,000 retailers
    assert ModelParams().cluster_fit_max_rows == 100_000


def test_fit_bundle_uses_the_sample_only_above_the_bound() -> None:
    features = _features()
    base = {"epochs": 2, "min_cluster_size": 20, "raw_baseline": False, "autoencoder_members": 1}  # one: speed
    at_bound, metrics = fit_bundle(features, "behaviour-v2", ModelParams(**base, cluster_fit_max_rows=900))
    unbounded, _ = fit_bundle(features, "behaviour-v2", ModelParams(**base, cluster_fit_max_rows=None))
    assert metrics["latent_fit_rows"] == 900 and at_bound.latent_clusterer.fit_rows_ == 900
    assert np.array_equal(at_bound.latent_clusterer.labels_, unbounded.latent_clusterer.labels_)

    runs = [fit_bundle(features, "behaviour-v2", ModelParams(**base, cluster_fit_max_rows=450)) for _ in range(2)]
    (first, first_metrics), (second, _) = runs
    assert first_metrics["latent_fit_rows"] == 450 and first.latent_clusterer.model_.labels_.shape == (450,)
    assert len(first.latent_clusterer.labels_) == 900
    assert np.array_equal(first.latent_clusterer.labels_, second.latent_clusterer.labels_)
    assert first_metrics["latent"]["n"] == 900  # the report covers every row, predicted ones included


def test_autoencoder_trained_on_the_bounded_sample_only_above_the_bound() -> None:
    features = _features()
    base = {"epochs": 2, "min_cluster_size": 20, "raw_baseline": False, "cluster_fit_max_rows": None,
            "autoencoder_members": 1}  # the bound on one autoencoder; the members' rows: test_ensemble.py
    full, _ = fit_bundle(features, "behaviour-v2", ModelParams(**base, autoencoder_max_rows=900))
    unbounded, _ = fit_bundle(features, "behaviour-v2", ModelParams(**base, autoencoder_max_rows=None))
    X = features.sort_index()
    assert np.array_equal(full.embed(X), unbounded.embed(X))
    sampled = [fit_bundle(features, "behaviour-v2", ModelParams(**base, autoencoder_max_rows=300))[0]
               for _ in range(2)]
    assert np.array_equal(sampled[0].embed(X), sampled[1].embed(X))  # deterministic
    assert not np.array_equal(sampled[0].embed(X), full.embed(X))  # a different training set
    assert sampled[0].embed(X).shape == (900, full.embed(X).shape[1])
