"""``write_report``: one self-contained ``report.html`` (inline CSS and SVG, no script, no network) for a batch run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from shared.report import figures, tables

REPORT_HTML = "report.html"
_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=select_autoescape(["html"]),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def season_curves(features: pd.DataFrame, labels: np.ndarray) -> dict[int, list[float]] | None:
    """Each cluster's mean 12-month curve from the season columns (``season_share_M`` or, in ``seed-v1``,
    ``avg_sales_qty_month_M`` normalised per retailer); None when the feature set has neither."""
    for prefix in ("season_share_", "avg_sales_qty_month_"):
        columns = [f"{prefix}{m}" for m in range(1, 13)]
        if all(c in features.columns for c in columns):
            values = np.maximum(features[columns].to_numpy(dtype=float), 0.0)
            total = values.sum(axis=1, keepdims=True)
            shares = np.divide(values, total, out=np.full_like(values, 1 / 12), where=total > 0)
            return {int(c): shares[labels == c].mean(axis=0).tolist() for c in np.unique(labels)}
    return None


def _check(features: pd.DataFrame, predictions: pd.DataFrame, latent: np.ndarray | None) -> None:
    if "latent_cluster" not in predictions.columns:
        raise ValueError("predictions: missing column 'latent_cluster'")
    missing = predictions.index.difference(features.index)
    if len(missing):
        raise ValueError(f"features: no row for {len(missing)} predicted shop_id(s), e.g. {missing[:3].tolist()}")
    if latent is not None and len(latent) != len(predictions):
        raise ValueError(f"latent: {len(latent)} rows for {len(predictions)} predictions (one row per prediction)")


def warnings(summary: Mapping[str, Any], variance: float | None) -> list[str]:
    """What a reader must not over-read, said plainly."""
    out = []
    chosen = summary.get("served") if isinstance(summary.get("served"), Mapping) else summary.get("latent", {})
    if (chosen.get("clusters") or 0) < 2:
        out.append("Fewer than two clusters: these results cannot support segments.")
    if (chosen.get("noise_ratio") or 0) > 0.5:
        out.append(f"Most retailers ({chosen['noise_ratio']:.0%}) are noise: the clusters describe a minority.")
    if all("ari" not in (summary.get(s) or {}) for s in ("raw", "latent", "served")):
        out.append("No ground truth was given (--truth): agreement with real archetypes (ARI) is not measured.")
    if variance is not None and variance < 0.6:
        out.append(f"The 2-D projection keeps only {variance:.0%} of the latent variance: clusters that overlap in "
                   "it may be apart in the full latent space.")
    return out


def write_report(out_dir: str | Path, *, summary: Mapping[str, Any], features: pd.DataFrame,
                 predictions: pd.DataFrame, insights: pd.DataFrame, latent: np.ndarray | None = None,
                 loss_history: Mapping[str, Sequence[float]] | None = None) -> Path:
    """Write ``out_dir/report.html`` and return its path.

    ``summary``: the pipeline's summary (``feature_set``, ``eligible``, ``features``, ``raw``/``latent`` and, when
    present, ``served``, ``profile``, ``seconds``); ``features``: every retailer (index shop_id; ``eligible``,
    ``as_of`` and the feature columns); ``predictions``: the clustered retailers (index shop_id; ``latent_cluster``,
    ``raw_cluster``, optionally ``served_cluster``); ``insights``: ``cluster_insights.csv`` as a frame (``space``,
    ``cluster``, ``size``, ``<feature>_mean|_median|_std``); ``latent``: the latent vectors, one row per prediction
    (the projection is left out without it); ``loss_history``: the autoencoder's ``loss`` / ``val_loss`` per epoch.
    """
    _check(features, predictions, latent)
    space = "served" if "served_cluster" in predictions.columns else "latent"
    labels = predictions[f"{space}_cluster"].to_numpy(dtype=np.int64)
    spaces = {s: predictions[f"{s}_cluster"].to_numpy(dtype=np.int64) for s in ("raw", "latent", "served")
              if f"{s}_cluster" in predictions.columns}
    curves = season_curves(features.loc[predictions.index], labels)
    projection, variance = figures.projection(np.asarray(latent), labels) if latent is not None else (None, None)
    insight_space = space if space in set(insights["space"]) else "latent"
    svg = {"sizes": figures.cluster_sizes(spaces), "projection": projection,
           "seasonality": None if curves is None else figures.seasonality(curves),
           "loss": figures.loss_curve(loss_history) if loss_history and loss_history.get("loss") else None,
           "overlap": None if "raw" not in spaces else figures.contingency(spaces["latent"], spaces["raw"], "latent",
                                                                            "raw")}
    html = _ENV.get_template("report.html").render(
        summary=summary, space=space, profile=tables.profile(features, summary), comparison=tables.comparison(summary),
        insights=tables.insights(insights, insight_space), svg=svg, variance=variance,
        warnings=warnings(summary, variance))
    path = Path(out_dir) / REPORT_HTML
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
