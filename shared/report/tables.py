"""The report's tables, as plain rows for the template: data profile, raw vs latent, per-cluster insights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

SPACE_KEYS = ("clusters", "noise_ratio", "largest_share", "ari")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HEAD_COLUMNS = ("eligible", "as_of")


def feature_columns(features: pd.DataFrame) -> list[str]:
    return [c for c in features.columns if c not in HEAD_COLUMNS and pd.api.types.is_numeric_dtype(features[c])]


def flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` -> ``[("a.b", 1)]`` (lists of numbers shown as they are)."""
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        rows += flatten(value, f"{name}.") if isinstance(value, Mapping) else [(name, value)]
    return rows


def profile(features: pd.DataFrame, summary: Mapping[str, Any]) -> dict[str, Any]:
    """Retailers, eligibility, data months, the pipeline's own profile (when it reports one) and every feature's
    distribution over the eligible retailers."""
    eligible = features[features["eligible"].astype(bool)] if "eligible" in features.columns else features
    facts = [("retailers", len(features)), ("eligible", len(eligible)),
             ("eligible share", len(eligible) / len(features) if len(features) else 0.0)]
    if "as_of" in features.columns and len(features):
        months = f"{features['as_of'].min()} … {features['as_of'].max()}"
        facts.append(("data as of (latest month per retailer)", months))
    extra = flatten(summary["profile"]) if isinstance(summary.get("profile"), Mapping) else []
    columns = feature_columns(features)
    stats = eligible[columns].quantile(list(QUANTILES)) if len(eligible) else None
    distribution = [] if stats is None else [
        {"feature": c, "mean": float(eligible[c].mean()), "quantiles": [float(stats.loc[q, c]) for q in QUANTILES]}
        for c in columns
    ]
    names = [f"p{round(q * 100)}" for q in QUANTILES]
    return {"facts": facts + extra, "distribution": distribution, "quantiles": names}


def comparison(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per space the summary reports (raw, latent, and served when the pipeline chose one)."""
    rows = []
    for space in ("raw", "latent", "served"):
        values = summary.get(space)
        if isinstance(values, Mapping):
            rows.append({"space": space, **{k: values.get(k) for k in SPACE_KEYS},
                         "note": ", ".join(f"{k} {values[k]}" for k in ("space", "min_cluster_size") if k in values)})
    return rows


def insights(insights_frame: pd.DataFrame, space: str, top: int = 12) -> dict[str, Any]:
    """Per cluster of ``space``: size, share and the features whose cluster mean is furthest from the overall
    mean (in standard deviations over all the space's retailers, pooled from the clusters' summaries), plus every
    feature's mean."""
    frame = insights_frame[insights_frame["space"] == space].sort_values("cluster")
    means = [c for c in frame.columns if c.endswith("_mean")]
    sizes = frame["size"].to_numpy(dtype=float)
    total = sizes.sum() or 1.0
    overall = {c: float(np.average(frame[c], weights=sizes)) for c in means} if len(frame) else {}
    spread = {c: _pooled_std(frame, c, overall[c], sizes) for c in means}
    rows = []
    for _, row in frame.iterrows():
        gaps = {c[: -len("_mean")]: (row[c] - overall[c]) / spread[c] for c in means if spread[c] > 0}
        marked = sorted(gaps, key=lambda f: -abs(gaps[f]))[:3]
        rows.append({"cluster": int(row["cluster"]), "size": int(row["size"]), "share": row["size"] / total,
                     "marks": [(f, gaps[f]) for f in marked], "means": [float(row[c]) for c in means]})
    return {"space": space, "columns": [c[: -len("_mean")] for c in means], "rows": rows}


def _pooled_std(frame: pd.DataFrame, mean_column: str, overall: float, sizes: np.ndarray) -> float:
    """The std over every retailer from each cluster's mean and std (within plus between clusters)."""
    std_column = mean_column[: -len("_mean")] + "_std"
    within = frame[std_column].fillna(0.0).to_numpy(dtype=float) ** 2 if std_column in frame.columns else 0.0
    return float(np.sqrt(np.average(within + (frame[mean_column] - overall) ** 2, weights=sizes)))
