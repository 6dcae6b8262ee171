"""THE model fit, shared by the batch pipeline and the trainer: scale, autoencode, cluster, measure."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import RobustScaler

from shared.clustering import DensityClusterer
from shared.logging import get_logger
from shared.metrics import clustering_report
from shared.model.bundle import ModelBundle
from shared.model.params import ModelParams

Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)``; stages: scaling, autoencoder (per epoch), latent-clustering,
raw-clustering, metrics."""

log = get_logger(__name__)


def canonical_order(features: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by ``shop_id`` (the index); mixed id types sort by their string form."""
    try:
        return features.sort_index(kind="stable")
    except TypeError:
        return features.sort_index(kind="stable", key=lambda idx: idx.map(str))


def _validate(features: Any, params: ModelParams) -> pd.DataFrame:
    if not isinstance(features, pd.DataFrame):
        raise TypeError(f"features: expected a pandas DataFrame indexed by shop_id, got {type(features).__name__}")
    if features.shape[1] < 2:
        raise ValueError(f"features: needs at least 2 feature columns, got {features.shape[1]}")
    if features.shape[0] < max(params.min_cluster_size, 2):
        raise ValueError(
            f"features: {features.shape[0]} rows is fewer than min_cluster_size={params.min_cluster_size}"
        )
    if features.index.has_duplicates:
        dup = features.index[features.index.duplicated()][:5].tolist()
        raise ValueError(f"features: duplicate shop_id values in the index, e.g. {dup}")
    non_numeric = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise ValueError(f"features: non-numeric column(s) {non_numeric}")
    values = features.to_numpy(dtype=np.float64)
    bad = [str(c) for c, ok in zip(features.columns, np.isfinite(values).all(axis=0), strict=True) if not ok]
    if bad:
        raise ValueError(f"features: NaN or infinite values in column(s) {bad}")
    return canonical_order(features)


def _truth_for(truth: pd.Series | None, index: pd.Index) -> np.ndarray | None:
    if truth is None:
        return None
    if not isinstance(truth, pd.Series):
        raise TypeError("truth: expected a pandas Series indexed by shop_id")
    missing = index.difference(truth.index)
    if len(missing):
        raise ValueError(f"truth: no label for {len(missing)} shop_id(s), e.g. {missing[:5].tolist()}")
    return truth.loc[index].to_numpy()


def fit_bundle(
    features: pd.DataFrame,
    feature_set: str,
    params: ModelParams | None = None,
    progress: Progress | None = None,
    truth: pd.Series | None = None,
) -> tuple[ModelBundle, dict[str, Any]]:
    """Fit scaler, autoencoder, latent HDBSCAN and (optionally) the raw-feature baseline on ``features``.

    ``features`` is indexed by shop_id with one numeric column per feature; rows are sorted by shop_id first,
    so the result does not depend on input order. ``truth`` (archetype per shop_id) adds ARI/AMI.
    Returns the bundle and ``{"n", "latent": report, "raw": report | None, "autoencoder": {...}, "seconds": {...}}``.
    """
    from shared.model.autoencoder import Autoencoder  # TensorFlow loads only when training

    params = params or ModelParams()
    report = progress or (lambda stage, done, total: None)
    data = _validate(features, params)
    truth_values = _truth_for(truth, data.index)
    seconds: dict[str, float] = {}
    t_start = time.perf_counter()

    report("scaling", 0, 1)
    t0 = time.perf_counter()
    scaler = RobustScaler().fit(data.to_numpy(dtype=np.float64))
    scaled = scaler.transform(data.to_numpy(dtype=np.float64))
    seconds["scaling"] = time.perf_counter() - t0
    report("scaling", 1, 1)

    log.info("autoencoder.fit", rows=len(data), features=data.shape[1], epochs=params.epochs)
    t0 = time.perf_counter()
    report("autoencoder", 0, params.epochs)
    ae = Autoencoder(**params.autoencoder_kwargs()).fit(
        scaled, epoch_callback=lambda done, total, logs: report("autoencoder", done, total)
    )
    encoder = ae.to_numpy_encoder()
    latent = encoder.transform(scaled)
    seconds["autoencoder"] = time.perf_counter() - t0
    report("autoencoder", params.epochs, params.epochs)

    t0 = time.perf_counter()
    report("latent-clustering", 0, 1)
    latent_clusterer = DensityClusterer(**params.clusterer_kwargs()).fit(latent)
    seconds["latent_clustering"] = time.perf_counter() - t0
    report("latent-clustering", 1, 1)
    raw_clusterer = None
    if params.raw_baseline:
        t0 = time.perf_counter()
        report("raw-clustering", 0, 1)
        raw_rows = raw_baseline_rows(len(data), params.raw_baseline_max_rows)
        raw_clusterer = DensityClusterer(**params.clusterer_kwargs()).fit(scaled[raw_rows])
        seconds["raw_clustering"] = time.perf_counter() - t0
        report("raw-clustering", 1, 1)
    seconds["clustering"] = seconds["latent_clustering"] + seconds.get("raw_clustering", 0.0)

    t0 = time.perf_counter()
    report("metrics", 0, 1)
    metrics: dict[str, Any] = {
        "n": len(data),
        "latent": clustering_report(
            latent_clusterer.labels_, latent, truth_values, dbcv=latent_clusterer.relative_validity_
        ),
        "raw": None if raw_clusterer is None else _raw_report(raw_clusterer, scaled, truth_values, raw_rows),
        "autoencoder": _history_summary(ae.history_),
    }
    seconds["metrics"] = time.perf_counter() - t0
    report("metrics", 1, 1)
    seconds["total"] = time.perf_counter() - t_start
    metrics["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    bundle = ModelBundle(
        feature_set=feature_set,
        columns=[str(c) for c in data.columns],
        scaler=scaler,
        encoder=encoder,
        latent_clusterer=latent_clusterer,
        raw_clusterer=raw_clusterer,
        params=params,
        keras_model=ae.model_,
        history=ae.history_,
    )
    log.info(
        "model.fitted",
        feature_set=feature_set,
        latent_clusters=metrics["latent"]["clusters"],
        latent_noise=round(metrics["latent"]["noise_ratio"], 4),
        seconds=metrics["seconds"]["total"],
    )
    return bundle, metrics


def raw_baseline_rows(n_rows: int, max_rows: int | None) -> np.ndarray:
    """Rows (in canonical shop_id order) the raw baseline is fitted on: all, or ``max_rows`` evenly spaced."""
    if max_rows is None or n_rows <= max_rows:
        return np.arange(n_rows)
    return np.unique(np.linspace(0, n_rows - 1, max_rows).round().astype(np.int64))


def _raw_report(clusterer: DensityClusterer, scaled: np.ndarray, truth: np.ndarray | None,
                rows: np.ndarray) -> dict[str, Any]:
    """The baseline's report over the rows it was fitted on (``sample`` says how many of all rows)."""
    report = clustering_report(clusterer.labels_, scaled[rows], None if truth is None else truth[rows],
                               dbcv=clusterer.relative_validity_)
    return {**report, "sample": len(rows), "of": len(scaled)}


def _history_summary(history: dict[str, list[float]]) -> dict[str, Any]:
    val = history.get("val_loss") or []
    return {
        "epochs_run": len(history.get("loss", [])),
        "final_loss": history["loss"][-1] if history.get("loss") else None,
        "best_val_loss": min(val) if val else None,
        "history": history,
    }
