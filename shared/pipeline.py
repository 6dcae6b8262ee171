"""The seed's four batch scripts in one: features, autoencoder training, clustering, inference, insights.

Every step calls the same core functions the services use (``features_from_monthly``, ``fit_bundle`` with its
model selection, the quality ``Gates``), so batch and streaming results agree by construction.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared.config import settings_default
from shared.data.csv_io import read_sales_csv
from shared.features import EligibilityRule, get_feature_set
from shared.features.build import features_from_monthly
from shared.features.chunked import features_from_csv_partitioned, partitions_for
from shared.features.monthly import monthly_panel
from shared.features.profile import data_profile
from shared.logging import get_logger
from shared.metrics import clustering_report
from shared.model.bundle import ModelBundle
from shared.model.fit import fit_bundle, raw_baseline_rows
from shared.model.gates import Gates
from shared.model.params import ModelParams
from shared.model.refusal import InsufficientDataError
from shared.progress import Progress, or_silent
from shared.report import write_report

log = get_logger(__name__)

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


def _read_features(sales_csv: str | Path, feature_set: str, rule: EligibilityRule,
                   partition_bytes: int | None = None) -> tuple[pd.DataFrame, dict]:
    """The feature frame of every shop and the data profile: in memory, or out of core for a large CSV."""
    partitions = partitions_for(sales_csv, partition_bytes or int(settings_default("pipeline_partition_bytes")))
    if partitions > 1:
        log.info("pipeline.out_of_core", partitions=partitions)
        return features_from_csv_partitioned(sales_csv, get_feature_set(feature_set), rule, partitions)
    panel = monthly_panel(read_sales_csv(sales_csv))
    return features_from_monthly(panel, get_feature_set(feature_set), rule), data_profile(panel, rule)


def _served_predictions(bundle: ModelBundle, eligible: pd.DataFrame) -> pd.DataFrame:
    """Per shop: latent, raw and served labels with strengths (the fit's own labels for the rows it saw)."""
    latent_labels, latent_strength = bundle.latent_clusterer.labels_, bundle.latent_clusterer.probabilities_
    frame = pd.DataFrame({"latent_cluster": latent_labels, "latent_cluster_strength": latent_strength},
                         index=eligible.index)
    if bundle.raw_clusterer is not None:
        frame["raw_cluster"], frame["raw_cluster_strength"] = _raw_predictions(bundle, eligible)
    space = bundle.served_space
    frame["served_cluster"] = frame[f"{space}_cluster"]
    frame["served_cluster_strength"] = frame[f"{space}_cluster_strength"]
    return frame.rename_axis("shop_id")


def refuse_untrusted(served: dict[str, Any], gates: Gates) -> None:
    """Raise :class:`InsufficientDataError` when the served clustering fails the quality gates."""
    reason = gates.verdict(served)
    if reason is not None:
        raise InsufficientDataError(
            f"no trustworthy segments ({reason})",
            "relax the eligibility rule (STABLESEG_MIN_TENURE_YEARS / STABLESEG_MIN_AVG_ACTIVE_MONTHS_PER_YEAR) to "
            "cluster more retailers, or set STABLESEG_MIN_CLUSTER_SIZE / STABLESEG_GATE_MAX_NOISE_RATIO",
        )


def run_pipeline(
    sales_csv: str | Path,
    artifacts: str | Path,
    feature_set: str,
    params: ModelParams,
    rule: EligibilityRule,
    truth_csv: str | Path | None = None,
    progress: Progress | None = None,
    gates: Gates | None = None,
    partition_bytes: int | None = None,
) -> PipelineResult:
    """Run the whole batch pipeline and write its artifacts into ``artifacts``.

    Raises :class:`InsufficientDataError` (after writing features.csv) when the data cannot support segments.
    A CSV larger than ``partition_bytes`` (default: the setting ``pipeline_partition_bytes``) is read out of core.
    """
    report = or_silent(progress)
    out = Path(artifacts)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    features, profile = _features_stage(sales_csv, feature_set, rule, out, report, partition_bytes)
    seconds_features = time.perf_counter() - t_start
    eligible = features.loc[features["eligible"]].drop(columns=["eligible", "as_of"])
    truth = read_truth(truth_csv).reindex(eligible.index).fillna("unknown") if truth_csv else None
    bundle, metrics = fit_bundle(eligible, feature_set, params, progress=report, truth=truth)
    refuse_untrusted(metrics["served"], gates or Gates())
    eligible = eligible.sort_index()  # fit_bundle's canonical order: the clusterers' rows follow it

    t0 = time.perf_counter()
    predictions, insights = _write_predictions(bundle, eligible, out)
    seconds_inference = time.perf_counter() - t0
    truth_values = None if truth is None else truth.loc[eligible.index].to_numpy()
    inference = {space: clustering_report(predictions[f"{space}_cluster"].to_numpy(), truth=truth_values)
                 for space in ("latent", "raw", "served") if f"{space}_cluster" in predictions}
    bundle.save(out / MODEL_DIR, meta={"training_rows": len(eligible)})
    summary = _summary(bundle, profile, metrics, inference, feature_set)
    summary["seconds"] = _seconds(metrics["seconds"], seconds_features, seconds_inference, t_start)
    all_metrics = {"fit": _without_history(metrics), "inference": inference, "summary": summary}
    (out / METRICS_JSON).write_text(json.dumps(all_metrics, indent=2, default=float))
    report_path = write_report(out, summary=summary, features=features, predictions=predictions, insights=insights,
                               latent=bundle.embed(eligible), loss_history=bundle.history)
    log.info("pipeline.done", artifacts=str(out), served=summary["served"], report=str(report_path))
    return PipelineResult(features, predictions, insights, all_metrics, summary, report_path)


def _features_stage(sales_csv: str | Path, feature_set: str, rule: EligibilityRule, out: Path,
                    report: Progress, partition_bytes: int | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every shop's features and the data profile; features.csv written."""
    report("features", 0, 1)
    features, profile = _read_features(sales_csv, feature_set, rule, partition_bytes)
    report("features", 1, 1)
    log.info("pipeline.profile", **profile)
    features.rename_axis("shop_id").to_csv(out / FEATURES_CSV)
    return features, profile


def _write_predictions(bundle: ModelBundle, eligible: pd.DataFrame, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predictions and insights for the shops the model was fitted on, written as CSV.

    HDBSCAN's own labels and membership strengths (see _raw_predictions for the raw baseline's sample); new and
    updated retailers go through approximate_predict."""
    predictions = _served_predictions(bundle, eligible)
    predictions.to_csv(out / PREDICTIONS_CSV)
    insights = pd.concat([cluster_insights(eligible, predictions[f"{space}_cluster"].to_numpy(), space)
                          for space in ("latent", "raw", "served") if f"{space}_cluster" in predictions],
                         ignore_index=True)
    insights.to_csv(out / INSIGHTS_CSV, index=False)
    return predictions, insights


def _summary(bundle: ModelBundle, profile: dict, metrics: dict, inference: dict, feature_set: str) -> dict[str, Any]:
    served = metrics["served"]
    return {
        "eligible": metrics["n"], "features": len(bundle.columns), "feature_set": feature_set,
        "profile": profile,
        **{space: _space_summary(inference[space]) for space in ("latent", "raw") if space in inference},
        "served": {"space": served["space"], "min_cluster_size": served["min_cluster_size"],
                   "min_samples": served["min_samples"], **_space_summary(inference["served"])},
        "candidates": metrics["selection"]["candidates"],
        "selection_reason": metrics["selection"]["reason"],
        "trust": metrics["trust"],
        "schedule": {k: metrics["autoencoder"][k] for k in ("batch_size", "epochs", "epochs_run")},
    }


def _seconds(fit: dict[str, float], features: float, inference: float, started: float) -> dict[str, float]:
    return {
        "features": round(features, 3),
        "autoencoder": round(fit["scaling"] + fit["autoencoder"], 3),
        "selection": round(fit["selection"], 3),
        "clustering": round(fit["clustering"] + inference, 3),
        "total": round(time.perf_counter() - started, 3),
    }


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
