"""Clustering quality figures, JSON-serialisable (plain ints, floats, None, dicts)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, silhouette_score

NOISE = -1
SILHOUETTE_SAMPLE = 10_000
DBCV_SAMPLE = 2_000
SAMPLE_SEED = 0


def _labels(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels, got {arr.ndim} dimension(s)")
    integral = np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating) and bool(np.all(np.mod(arr, 1) == 0))
    )
    if arr.size and not integral:
        raise ValueError(f"{name}: labels must be integers (-1 = noise), got dtype {arr.dtype}")
    return arr.astype(np.int64)


def gini(sizes: Any) -> float:
    """Gini coefficient of non-negative sizes: 0 = all equal, towards 1 = one holds everything."""
    x = np.sort(np.asarray(sizes, dtype=np.float64))
    if x.size == 0 or x.sum() == 0:
        return 0.0
    n = x.size
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def _sample(n: int, limit: int) -> np.ndarray:
    """Deterministic row sample (all rows when ``n <= limit``)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(SAMPLE_SEED).choice(n, size=limit, replace=False))


def _silhouette(labels: np.ndarray, X: np.ndarray) -> float | None:
    mask = labels != NOISE
    clustered = labels[mask]
    if np.unique(clustered).size < 2 or clustered.size <= np.unique(clustered).size:
        return None
    idx = np.flatnonzero(mask)[_sample(int(mask.sum()), SILHOUETTE_SAMPLE)]
    if np.unique(labels[idx]).size < 2:
        return None
    return float(silhouette_score(X[idx], labels[idx]))


def _dbcv(labels: np.ndarray, X: np.ndarray) -> float | None:
    """HDBSCAN's density-based validity index on a deterministic sample (noise kept as noise)."""
    from hdbscan.validity import validity_index

    idx = _sample(labels.size, DBCV_SAMPLE)
    sub_labels, sub_x = labels[idx].copy(), X[idx]
    ids, counts = np.unique(sub_labels[sub_labels != NOISE], return_counts=True)
    sub_labels[np.isin(sub_labels, ids[counts < 3])] = NOISE  # too few sampled points to estimate a density
    if np.unique(sub_labels[sub_labels != NOISE]).size < 2:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(validity_index(sub_x, sub_labels))
    return value if np.isfinite(value) else None


def clustering_report(
    labels: Any, X: Any = None, truth: Any = None, dbcv: float | None = None
) -> dict[str, Any]:
    """Summary of one clustering (label ``-1`` = noise).

    Keys: ``n`` (points), ``clusters``, ``noise`` (count), ``noise_ratio``, ``largest_share`` (largest cluster /
    all points), ``sizes`` ({label: size}, clusters only, keys as strings), ``gini`` (of the cluster sizes),
    ``silhouette`` (non-noise points of ``X``, on a fixed sample of 10k above that; ``None`` without ``X`` or
    with < 2 clusters), ``dbcv`` (the given value, e.g. HDBSCAN's ``relative_validity_``, else
    ``hdbscan.validity.validity_index`` on a fixed 2k-point sample of ``X``; ``None`` if not computable),
    ``ari`` / ``ami`` against ``truth`` when given (``None`` otherwise). For ARI/AMI noise counts as one more
    label of its own, so a clustering that calls many points noise is penalised, not flattered.
    """
    lab = _labels(labels, "labels")
    n = int(lab.size)
    x = None
    if X is not None:
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != n:
            raise ValueError(f"X: expected shape ({n}, d) matching labels, got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("X: contains NaN or infinite values")
    ids, counts = np.unique(lab[lab != NOISE], return_counts=True)
    noise = int((lab == NOISE).sum())
    report: dict[str, Any] = {
        "n": n,
        "clusters": int(ids.size),
        "noise": noise,
        "noise_ratio": noise / n if n else 0.0,
        "largest_share": int(counts.max()) / n if counts.size else 0.0,
        "sizes": {str(int(k)): int(v) for k, v in zip(ids, counts, strict=True)},
        "gini": gini(counts),
        "silhouette": _silhouette(lab, x) if x is not None else None,
        "dbcv": None,
        "ari": None,
        "ami": None,
    }
    if dbcv is not None:
        report["dbcv"] = float(dbcv) if np.isfinite(dbcv) else None
    elif x is not None:
        report["dbcv"] = _dbcv(lab, x)
    if truth is not None:
        t = np.asarray(truth)
        if t.ndim != 1 or t.size != n:
            raise ValueError(f"truth: expected {n} labels matching labels, got shape {t.shape}")
        report["ari"] = float(adjusted_rand_score(t, lab))
        report["ami"] = float(adjusted_mutual_info_score(t, lab))
    return report
