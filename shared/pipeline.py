"""The seed's four batch scripts in one: features, autoencoder training, clustering, inference, insights.

Every step calls the same core functions the services use (``build_features``, ``fit_bundle``,
``ModelBundle.assign``), so batch and streaming results agree by construction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared.data.csv_io import read_sales_csv
from shared.features import EligibilityRule, build_features, get_feature_set
from shared.logging import get_logger
from shared.metrics import clustering_report
from shared.model.bundle import ModelBundle
from shared.model.fit import fit_bundle, raw_baseline_rows
from shared.model.params import ModelParams
from shared.report import write_report

log = get_logger(__name__)
Progress = Callable[[str, int, int], None]

FEATURES_CSV, PREDICTIONS_CSV, INSIGHTS_CSV = "features.csv", "cluster_predictions.csv", "cluster_insights.csv"
MODEL_DIR, METRICS_JSON = "model", "metrics.json"
SUMMARY_KEYS = ("clusters", "noise_ratio", "largest_share", "ari")


@dataclass
class PipelineResult:
    """What one run produced: per-shop features and predictions, per-cluster insights, metrics, summary."""

    features: pd.DataFrame
    predictions: pd.DataFrame
    insights: pd.DataFrame
    metrics: dict[str, Any]
    summary: dict[str, Any]
    report: Path | None = None  # DIR/report.html


def read_truth(path: str | Path) -> pd.Series:
    """``truth.csv`` -> archetype per shop_id (the archetype a shop was planted with)."""
    truth = pd.read_csv(path, dtype={"shop_id": str, "archetype": str}, usecols=["shop_id", "archetype"])
    return truth.set_index("shop_id")["archetype"]


def cluster_insights(features: pd.DataFrame, labels: np.ndarray, space: str) -> pd.DataFrame:
    """Per cluster (noise = -1 included): size, and mean / median / std of every feature."""
    frame = features.assign(cluster=labels)
    stats = frame.groupby("cluster").agg(["mean", "median", "std"])
    stats.columns = [f"{feature}_{stat}" for feature, stat in stats.columns]
    sizes = frame.groupby("cluster").size().rename("size")
    out = pd.concat([sizes, stats], axis=1).reset_index()
    out.insert(0, "space", space)
    return out


def _space_summary(report: dict[str, Any]) -> dict[str, Any]:
    return {key: report.get(key) for key in SUMMARY_KEYS if key != "ari" or report.get("ari") is not None}


def run_pipeline(
    sales_csv: str | Path,
    artifacts: str | Path,
    feature_set: str,
    params: ModelParams,
    rule: EligibilityRule,
    truth_csv: str | Path | None = None,
    progress: Progress | None = None,
) -> PipelineResult:
    """Run the whole batch pipeline and write its artifacts into ``artifacts``."""
    report = progress or (lambda stage, done, total: None)
    out = Path(artifacts)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    report("reading", 0, 1)
    sales = read_sales_csv(sales_csv)
    report("reading", 1, 1)
    t0 = time.perf_counter()
    report("features", 0, 1)
    features = build_features(sales, get_feature_set(feature_set), rule)
    seconds_features = time.perf_counter() - t0
    report("features", 1, 1)
    features.rename_axis("shop_id").to_csv(out / FEATURES_CSV)

    eligible = features.loc[features["eligible"]].drop(columns=["eligible", "as_of"])
    if len(eligible) < 2:
        raise ValueError(f"{sales_csv}: only {len(eligible)} eligible shop(s); nothing to cluster")
    truth = read_truth(truth_csv) if truth_csv else None
    if truth is not None:
        truth = truth.reindex(eligible.index).fillna("unknown")

    bundle, metrics = fit_bundle(eligible, feature_set, params, progress=report, truth=truth)
    eligible = eligible.sort_index()  # fit_bundle's canonical order: the clusterers' rows follow it

    # Inference for the shops the model was fitted on: HDBSCAN's own labels and membership strengths, which
    # hdbscan.approximate_predict only approximates (and costs minutes in the 18-29-dimensional raw space at
    # 60k shops). New and updated retailers go through approximate_predict in the assigner.
    t0 = time.perf_counter()
    latent_labels, latent_strength = bundle.latent_clusterer.labels_, bundle.latent_clusterer.probabilities_
    raw_labels, raw_strength = _raw_predictions(bundle, eligible)
    seconds_inference = time.perf_counter() - t0
    predictions = pd.DataFrame(
        {"latent_cluster": latent_labels, "latent_cluster_strength": latent_strength,
         "raw_cluster": raw_labels, "raw_cluster_strength": raw_strength},
        index=eligible.index,
    ).rename_axis("shop_id")
    predictions.to_csv(out / PREDICTIONS_CSV)
    insights = pd.concat(
        [cluster_insights(eligible, latent_labels, "latent"), cluster_insights(eligible, raw_labels, "raw")],
        ignore_index=True,
    )
    insights.to_csv(out / INSIGHTS_CSV, index=False)

    truth_values = None if truth is None else truth.loc[eligible.index].to_numpy()
    inference = {
        "latent": clustering_report(latent_labels, truth=truth_values),
        "raw": clustering_report(raw_labels, truth=truth_values),
    }
    bundle.save(out / MODEL_DIR, meta={"training_rows": len(eligible)})
    fit_seconds = metrics["seconds"]
    summary = {
        "eligible": len(eligible),
        "features": len(bundle.columns),
        "feature_set": feature_set,
        "latent": _space_summary(inference["latent"]),
        "raw": _space_summary(inference["raw"]),
        "seconds": {
            "features": round(seconds_features, 3),
            "autoencoder": round(fit_seconds["scaling"] + fit_seconds["autoencoder"], 3),
            "clustering": round(fit_seconds["clustering"] + seconds_inference, 3),
            "total": round(time.perf_counter() - t_start, 3),
        },
    }
    all_metrics = {"fit": _without_history(metrics), "inference": inference, "summary": summary}
    (out / METRICS_JSON).write_text(json.dumps(all_metrics, indent=2, default=float))
    # --- report.html: one isolated call (shared.report), whatever produced the frames -----------------------------
    report = write_report(out, summary=summary, features=features, predictions=predictions, insights=insights,
                          latent=bundle.embed(eligible), loss_history=bundle.history)  # fmt: skip
    log.info("pipeline.done", artifacts=str(out), **{k: v for k, v in summary.items() if k != "seconds"})
    return PipelineResult(features, predictions, insights, all_metrics, summary, report)


def _raw_predictions(bundle: ModelBundle, eligible: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Raw-baseline labels for every shop: the fit's own for the sampled rows, approximate_predict for the rest."""
    clusterer = bundle.raw_clusterer
    rows = raw_baseline_rows(len(eligible), bundle.params.raw_baseline_max_rows)
    labels = np.empty(len(eligible), dtype=np.int64)
    strengths = np.empty(len(eligible), dtype=np.float64)
    labels[rows], strengths[rows] = clusterer.labels_, clusterer.probabilities_
    rest = np.setdiff1d(np.arange(len(eligible)), rows)
    if len(rest):
        labels[rest], strengths[rest] = bundle.assign_raw(eligible.iloc[rest])
    return labels, strengths


def _without_history(metrics: dict[str, Any]) -> dict[str, Any]:
    ae = {k: v for k, v in metrics.get("autoencoder", {}).items() if k != "history"}
    return {**metrics, "autoencoder": ae}
