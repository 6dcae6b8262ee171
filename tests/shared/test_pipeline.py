"""`stableseg pipeline run` end to end on a small generated dataset (real CLI, real TensorFlow and HDBSCAN)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from shared.data.generator import generate
from shared.data.plan import World
from shared.features import DEFAULT_FEATURE_SET, get_feature_set

pytestmark = pytest.mark.xdist_group("pipeline")

SMALL_MODEL = {"STABLESEG_EPOCHS": "4", "STABLESEG_MIN_CLUSTER_SIZE": "15", "STABLESEG_BATCH_SIZE": "64",
               "STABLESEG_AUTOENCODER_MEMBERS": "1"}


def stableseg(*args: str, env: dict[str, str] | None = None,
              model: dict[str, str] = SMALL_MODEL) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **model, **(env or {})}, timeout=600)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    generate(retailers=700, years=3, seed=5, out_dir=out)
    return out


@pytest.fixture(scope="module")
def first_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    artifacts = tmp_path_factory.mktemp("run1")
    result = stableseg("pipeline", "run", "--input", str(dataset / "sales.csv"), "--truth",
                       str(dataset / "truth.csv"), "--artifacts", str(artifacts), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    return artifacts, json.loads(result.stdout.strip().splitlines()[-1])


def test_json_summary_has_the_contract_fields(first_run: tuple[Path, dict]) -> None:
    _, summary = first_run
    assert summary["eligible"] > 400
    assert summary["features"] == len(get_feature_set(DEFAULT_FEATURE_SET).columns)
    for space in ("latent", "raw"):
        assert set(summary[space]) == {"clusters", "noise_ratio", "largest_share", "ari"}
        assert 0.0 <= summary[space]["noise_ratio"] <= 1.0
        assert -1.0 <= summary[space]["ari"] <= 1.0
    assert set(summary["seconds"]) == {"features", "autoencoder", "selection", "clustering", "total"}
    assert summary["latent"]["clusters"] >= 2
    served = summary["served"]
    assert served["space"] in ("latent", "raw") and served["clusters"] >= 2 and served["min_cluster_size"] == 15
    assert served["ari"] == summary[served["space"]]["ari"]  # the served labels are that space's labels
    assert {c["space"] for c in summary["candidates"]} == {"latent", "raw"}
    assert all({"stability", "seed_agreement", "dbcv", "noise_ratio", "score"} <= set(c) for c in summary["candidates"])
    assert all(0.0 <= t <= 1.0 for t in summary["trust"].values()) and summary["trust"]
    profile = summary["profile"]
    assert profile["retailers"] == 700 and profile["eligible"] == summary["eligible"]
    assert profile["months_of_history"]["p90"] <= 36 and 0 < profile["active_month_share"]["p50"] <= 1


def test_artifacts_are_written(first_run: tuple[Path, dict], dataset: Path) -> None:
    artifacts, summary = first_run
    features = pd.read_csv(artifacts / "features.csv", dtype={"shop_id": str})
    assert list(features.columns[:3]) == ["shop_id", "eligible", "as_of"]
    sales_shops = pd.read_csv(dataset / "sales.csv", usecols=["shop_id"], dtype=str)["shop_id"].nunique()
    assert len(features) == features["shop_id"].nunique() == sales_shops
    predictions = pd.read_csv(artifacts / "cluster_predictions.csv", dtype={"shop_id": str})
    assert list(predictions.columns) == ["shop_id", "latent_cluster", "latent_cluster_strength", "raw_cluster",
                                         "raw_cluster_strength", "served_cluster", "served_cluster_strength"]
    served = summary["served"]["space"]
    assert predictions["served_cluster"].equals(predictions[f"{served}_cluster"])
    assert len(predictions) == summary["eligible"] == int(features["eligible"].sum())
    insights = pd.read_csv(artifacts / "cluster_insights.csv")
    latent = insights[insights["space"] == "latent"]
    assert latent["size"].sum() == summary["eligible"]
    columns = get_feature_set(DEFAULT_FEATURE_SET).columns
    expected = ["space", "cluster", "size", *(f"{c}_{stat}" for c in columns for stat in ("mean", "median", "std"))]
    assert list(insights.columns) == expected
    for name in ("manifest.json", "encoder.npz", "scaler.joblib", "latent_clusterer.joblib", "raw_clusterer.joblib",
                 "autoencoder.keras", "loss_curve.png"):
        assert (artifacts / "model" / name).is_file(), name
    report = (artifacts / "report.html").read_text()  # shared.report (tests/shared/report/ checks it in depth)
    assert report.count("<svg") == 5 and "Autoencoder loss" in report and "<script" not in report


def test_rerun_gives_identical_labels(first_run: tuple[Path, dict], dataset: Path, tmp_path: Path) -> None:
    artifacts, _ = first_run
    result = stableseg("pipeline", "run", "--input", str(dataset / "sales.csv"), "--artifacts", str(tmp_path),
                       "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    again = json.loads(result.stdout.strip().splitlines()[-1])
    assert "ari" not in again["latent"]  # no --truth, no ARI
    first = pd.read_csv(artifacts / "cluster_predictions.csv")
    second = pd.read_csv(tmp_path / "cluster_predictions.csv")
    pd.testing.assert_frame_equal(first, second)
    assert (artifacts / "model/manifest.json").read_bytes() == (tmp_path / "model/manifest.json").read_bytes()


def test_malformed_csv_names_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("shop_id,product_id,year,month,sales_qty\nS1,P1,2024,1,3\nS1,P2,2024,13,4\n")
    result = stableseg("pipeline", "run", "--input", str(bad), "--artifacts", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "line 3" in result.stderr and "month" in result.stderr


def test_unknown_feature_set_is_refused(dataset: Path, tmp_path: Path) -> None:
    result = stableseg("pipeline", "run", "--input", str(dataset / "sales.csv"), "--artifacts", str(tmp_path),
                       "--feature-set", "nope")
    assert result.returncode == 2, result.stderr  # a usage error, not a crash
    assert "Invalid value for --feature-set" in result.stderr and "unknown feature set 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_seed_profile_serves_the_latent_space_with_the_seed_density(dataset: Path, tmp_path: Path) -> None:
    result = stableseg("pipeline", "run", "--input", str(dataset / "sales.csv"), "--artifacts", str(tmp_path),
                       "--profile", "seed", "--json", model={})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["served"]["space"] == "latent" and summary["served"]["min_cluster_size"] == 50
    assert summary["schedule"]["batch_size"] == 300
    assert [c["factor"] for c in summary["candidates"]] == [1.0, 1.0]  # one density per space


@pytest.mark.parametrize(("activity", "rule", "segments"), [
    (0.4, {"STABLESEG_MIN_TENURE_YEARS": "0.5", "STABLESEG_MIN_AVG_ACTIVE_MONTHS_PER_YEAR": "3"}, True),
    (0.15, {}, False),
])
def test_sparse_buyers_yield_segments_or_a_one_line_refusal(tmp_path: Path, activity: float, rule: dict,
                                                            segments: bool) -> None:
    """Customers active in few months: the relaxed rule segments them (>= 2 clusters, <= 50% noise); under the
    default rule almost nobody is eligible and the pipeline exits 4 naming the cause and the settings."""
    generate(retailers=1500, years=2, seed=4, out_dir=tmp_path / "data", world=World(activity_scale=activity))
    result = stableseg("pipeline", "run", "--input", str(tmp_path / "data" / "sales.csv"), "--artifacts",
                       str(tmp_path / "out"), "--json", env=rule, model={"STABLESEG_EPOCHS": "20"})
    if segments:
        assert result.returncode == 0, result.stderr[-3000:]
        served = json.loads(result.stdout.strip().splitlines()[-1])["served"]
        assert served["clusters"] >= 2 and served["noise_ratio"] <= 0.5
    else:
        assert result.returncode == 4, result.stderr[-3000:]
        line = result.stderr.strip().splitlines()[-1]
        assert line.startswith("cannot segment: only ") and "STABLESEG_MIN_TENURE_YEARS" in line
        assert not (tmp_path / "out" / "cluster_predictions.csv").exists()
