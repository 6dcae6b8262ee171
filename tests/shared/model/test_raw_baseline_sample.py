"""The raw-feature baseline on a deterministic sample of rows (what keeps training at 60k shops fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.model.fit import fit_bundle, raw_baseline_rows
from shared.model.params import ModelParams
from shared.pipeline import _raw_predictions

pytestmark = pytest.mark.xdist_group("model")


def test_sample_rows_are_evenly_spaced_and_deterministic() -> None:
    assert raw_baseline_rows(10, 4).tolist() == [0, 3, 6, 9]
    assert raw_baseline_rows(3, 4).tolist() == [0, 1, 2]
    assert raw_baseline_rows(5, None).tolist() == [0, 1, 2, 3, 4]
    rows = raw_baseline_rows(55_321, 20_000)
    assert len(rows) == 20_000 and rows[0] == 0 and rows[-1] == 55_320 and np.all(np.diff(rows) > 0)


def test_baseline_fitted_on_the_sample_and_predicted_for_the_rest() -> None:
    rng = np.random.default_rng(0)
    centres = (0.0, 4.0, 8.0)
    X = np.vstack([rng.normal(c, 0.3, (200, 6)) for c in centres])
    features = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)], index=[f"s{i:04d}" for i in range(600)])
    truth = pd.Series(np.repeat(["a", "b", "c"], 200), index=features.index)
    params = ModelParams(epochs=2, min_cluster_size=15, raw_baseline_max_rows=300)
    bundle, metrics = fit_bundle(features, "behaviour-v2", params, truth=truth)
    assert len(bundle.raw_clusterer.labels_) == 300
    assert (metrics["raw"]["sample"], metrics["raw"]["of"]) == (300, 600)
    assert metrics["raw"]["clusters"] == 3 and metrics["raw"]["ari"] > 0.95
    labels, strengths = _raw_predictions(bundle, features.sort_index())
    assert len(labels) == 600 and strengths.min() >= 0.0
    rows = raw_baseline_rows(600, 300)
    assert np.array_equal(labels[rows], bundle.raw_clusterer.labels_)
    # every blob's unsampled members land in the cluster of its sampled members
    for blob in range(3):
        members = labels[blob * 200:(blob + 1) * 200]
        assert (members == np.bincount(members[members >= 0]).argmax()).mean() > 0.95
