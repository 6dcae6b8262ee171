"""Density clustering (HDBSCAN) with soft online assignment of new points.

HDBSCAN's labels depend on the order of the rows it is fitted on: callers must pass rows in a canonical
order (sorted by ``shop_id``; :func:`shared.model.fit.fit_bundle` does this) so that the same data always
gives the same clustering. Label ``-1`` is noise.
"""

from __future__ import annotations

from typing import Any

import hdbscan
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from shared.config import SEED_PROFILE
from shared.estimator import keep_params
from shared.hdbscan_predict import approximate_predict, nearest_cluster, predict_with_nearest

NOISE = -1
_METHODS = ("eom", "leaf")


def _check_points(X: Any, name: str = "X", n_features: int | None = None) -> np.ndarray:
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got {x.ndim} dimension(s)")
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(f"{name}: expected {n_features} columns, got {x.shape[1]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x


class DensityClusterer(BaseEstimator):
    """``hdbscan.HDBSCAN`` with prediction data, exposing labels, membership strengths and cluster count.

    Learned attributes: ``model_`` (the fitted HDBSCAN), ``labels_``, ``probabilities_``, ``n_clusters_``,
    ``fit_rows_`` (rows HDBSCAN was fitted on), ``relative_validity_`` (HDBSCAN's DBCV approximation; ``None``
    unless ``gen_min_span_tree``). ``prediction_data=False`` (labels only, about half the fit's time) cannot
    predict.
    """

    def __init__(
        self,
        min_cluster_size: int = SEED_PROFILE["min_cluster_size"],  # type: ignore[assignment]
        min_samples: int | None = None,
        cluster_selection_method: str = "eom",
        cluster_selection_epsilon: float = 0.0,
        metric: str = "euclidean",
        gen_min_span_tree: bool = True,
        prediction_data: bool = True,
    ) -> None:
        keep_params(self, locals())

    def _validate_params(self, n_rows: int) -> None:
        if self.min_cluster_size < 2:
            raise ValueError(f"min_cluster_size: must be >= 2, got {self.min_cluster_size}")
        if self.min_samples is not None and self.min_samples < 1:
            raise ValueError(f"min_samples: must be >= 1 or None, got {self.min_samples}")
        if self.cluster_selection_method not in _METHODS:
            got = self.cluster_selection_method
            raise ValueError(f"cluster_selection_method: must be one of {_METHODS}, got {got!r}")
        if self.cluster_selection_epsilon < 0:
            raise ValueError(f"cluster_selection_epsilon: must be >= 0, got {self.cluster_selection_epsilon}")
        if n_rows < 2:
            raise ValueError(f"X: needs at least 2 rows to cluster, got {n_rows}")

    def fit(self, X: Any, y: Any = None, sample: np.ndarray | None = None) -> DensityClusterer:
        """Cluster the rows of ``X`` (in canonical order, see module docstring). Returns self.

        With ``sample`` (row positions), HDBSCAN is fitted on those rows only and the other rows are predicted
        (:meth:`predict`); ``labels_`` and ``probabilities_`` still cover every row of ``X``."""
        x = _check_points(X)
        fit_x = x if sample is None else x[np.asarray(sample, dtype=np.int64)]
        self._validate_params(fit_x.shape[0])
        model = hdbscan.HDBSCAN(
            min_cluster_size=self.min_cluster_size,
            min_samples=self.min_samples,
            cluster_selection_method=self.cluster_selection_method,
            cluster_selection_epsilon=float(self.cluster_selection_epsilon),
            metric=self.metric,
            gen_min_span_tree=self.gen_min_span_tree,
            prediction_data=self.prediction_data,
            # One process: hdbscan's default (4 joblib workers) is ~9x slower on a busy 2-core machine.
            core_dist_n_jobs=1,
        ).fit(fit_x)
        self.model_ = model
        self.labels_ = np.asarray(model.labels_, dtype=np.int64)
        self.probabilities_ = np.asarray(model.probabilities_, dtype=np.float64)
        self.n_clusters_ = int(self.labels_.max() + 1) if self.labels_.size else 0
        self.n_features_in_ = x.shape[1]
        self.fit_rows_ = fit_x.shape[0]
        self.relative_validity_ = self._relative_validity(model)
        if sample is not None:
            self.labels_, self.probabilities_ = self._with_predicted(x, np.asarray(sample, dtype=np.int64))
        return self

    def _with_predicted(self, x: np.ndarray, sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and strengths of every row: the fit's own for the sample rows, predicted for the rest."""
        labels = np.empty(x.shape[0], dtype=np.int64)
        strengths = np.empty(x.shape[0], dtype=np.float64)
        labels[sample], strengths[sample] = self.labels_, self.probabilities_
        rest = np.setdiff1d(np.arange(x.shape[0]), sample)
        labels[rest], strengths[rest] = self.predict(x[rest])
        return labels, strengths

    def _relative_validity(self, model: hdbscan.HDBSCAN) -> float | None:
        if not self.gen_min_span_tree or self.n_clusters_ < 2:
            return None
        value = float(model.relative_validity_)
        return value if np.isfinite(value) else None

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).labels_

    def predict(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, strengths)`` for new points: ``hdbscan.approximate_predict``, vectorised (-1 = noise)."""
        check_is_fitted(self, "model_")
        x = _check_points(X, n_features=self.n_features_in_)
        if x.shape[0] == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        if self.n_clusters_ == 0:  # approximate_predict needs at least one cluster: everything is noise
            return np.full(x.shape[0], NOISE, dtype=np.int64), np.zeros(x.shape[0], dtype=np.float64)
        return approximate_predict(self.model_, x)

    def predict_with_nearest(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(labels, strengths, nearest)``: :meth:`predict`, and :meth:`nearest_cluster` of the points it calls
        noise (-1 for the others), from one tree query."""
        check_is_fitted(self, "model_")
        x = _check_points(X, n_features=self.n_features_in_)
        if x.shape[0] == 0 or self.n_clusters_ == 0:
            n = x.shape[0]
            return np.full(n, NOISE, dtype=np.int64), np.zeros(n, dtype=np.float64), np.full(n, NOISE, dtype=np.int64)
        return predict_with_nearest(self.model_, x)

    def nearest_cluster(self, X: Any) -> np.ndarray:
        """Per point, the cluster of its nearest clustered training neighbour (-1 when none is near): where a
        point that :meth:`predict` calls noise sits."""
        check_is_fitted(self, "model_")
        x = _check_points(X, n_features=self.n_features_in_)
        if x.shape[0] == 0 or self.n_clusters_ == 0:
            return np.full(x.shape[0], NOISE, dtype=np.int64)
        return nearest_cluster(self.model_, x)
