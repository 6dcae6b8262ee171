"""``shared.report.write_report``: a self-contained report.html from real pipeline frames (the project's generator,
a real scaler + encoder + HDBSCAN bundle from the assigner tests' helpers, ``cluster_insights``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared.features import build_features
from shared.pipeline import cluster_insights
from shared.report import write_report
from tests.helpers import quick_bundle, synthetic


@pytest.fixture(scope="module")
def frames() -> dict[str, Any]:
    sales, eligible = synthetic()
    features = build_features(sales, "behaviour-v2")
    bundle = quick_bundle(eligible)
    latent = bundle.embed(eligible)
    labels = bundle.latent_clusterer.labels_
    raw = np.where(labels < 2, labels, -1)  # a second, coarser labelling standing in for the raw space
    predictions = pd.DataFrame({"latent_cluster": labels, "latent_cluster_strength": 1.0, "raw_cluster": raw,
                                "raw_cluster_strength": 1.0}, index=eligible.index).rename_axis("shop_id")
    insights = pd.concat([cluster_insights(eligible, labels, "latent"), cluster_insights(eligible, raw, "raw")],
                         ignore_index=True)
    summary = {"eligible": len(eligible), "features": eligible.shape[1], "feature_set": "behaviour-v2",
               "latent": {"clusters": int(labels.max() + 1), "noise_ratio": float((labels < 0).mean()),
                          "largest_share": 0.3}, "raw": {"clusters": 2, "noise_ratio": float((raw < 0).mean()),
                                                         "largest_share": 0.4}}
    history = {"loss": [1.0, 0.5, 0.3, 0.25], "val_loss": [1.1, 0.6, 0.35, 0.3]}
    return {"summary": summary, "features": features, "predictions": predictions, "insights": insights,
            "latent": latent, "loss_history": history, "labels": labels}


def report(tmp_path: Path, frames: dict[str, Any], **changes: Any) -> str:
    args = {k: frames[k] for k in ("summary", "features", "predictions", "insights", "latent", "loss_history")}
    path = write_report(tmp_path / "out", **{**args, **changes})
    assert path == tmp_path / "out" / "report.html"
    return path.read_text(encoding="utf-8")


def test_report_is_self_contained_with_every_section(tmp_path: Path, frames: dict[str, Any]) -> None:
    html = report(tmp_path, frames)
    assert "<script" not in html and "<link" not in html and "<img" not in html.replace("<image", "")
    assert not re.search(r'(src|href)="(https?:)?//', html), "the report must not load anything"
    assert html.count("<svg") == 5  # sizes, raw/latent overlap, seasonality, loss, projection
    for title in ("Data profile", "Raw features vs latent space", "Cluster sizes", "Seasonality per cluster",
                  "Autoencoder loss", "Latent space in two dimensions", "Per-cluster insights"):
        assert title in html
    labels = frames["labels"]
    insights = html.split('id="insights"')[1]
    clusters = sorted(set(labels.tolist()))
    assert insights.count("<tr><td>") == 2 * len(clusters)  # the summary table and the means table
    for cluster in clusters:
        assert f"{'noise' if cluster < 0 else f'cluster {cluster}'}</text>" in html.split('id="projection"')[1]
    assert f"<td class=\"n\">{len(frames['features']):,}</td>" in html  # retailers in the data profile
    assert "ARI) is not measured" in html  # no truth given: said plainly


def test_report_without_optional_parts_and_bad_input(tmp_path: Path, frames: dict[str, Any]) -> None:
    html = report(tmp_path, frames, latent=None, loss_history=None)
    assert "No latent vectors were given" in html and "No training history" in html and html.count("<svg") == 3
    with pytest.raises(ValueError, match="latent: 3 rows"):
        report(tmp_path, frames, latent=frames["latent"][:3])
    with pytest.raises(ValueError, match="predictions: missing column 'latent_cluster'"):
        report(tmp_path, frames, predictions=frames["predictions"].drop(columns=["latent_cluster"]))
    one = frames["summary"] | {"latent": {"clusters": 1, "noise_ratio": 0.7, "largest_share": 0.3}}
    assert "cannot support segments" in report(tmp_path, frames, summary=one)
