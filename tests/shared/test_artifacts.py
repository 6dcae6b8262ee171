"""Checksummed manifests, verified unpickling, the model bundle and fit_bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.datasets import make_blobs

from shared.artifacts import (
    ArtifactIntegrityError,
    load_joblib_verified,
    manifest_sha256,
    verify_manifest,
    write_manifest,
)
from shared.config import Settings
from shared.features import EligibilityRule
from shared.model import ModelBundle, ModelParams, fit_bundle
from shared.model.refusal import InsufficientDataError

pytestmark = pytest.mark.xdist_group("model")

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ModelParams(epochs=3, min_cluster_size=20, batch_size=100)


class _Marker:
    """Unpickling this writes a file: proves whether a pickle was ever loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.write_text, (Path(self.path), "unpickled"))


# --- manifest ---------------------------------------------------------------------------------------------
def _artifact_dir(tmp_path: Path) -> Path:
    d = tmp_path / "art"
    (d / "sub").mkdir(parents=True)
    joblib.dump({"a": 1}, d / "obj.joblib")
    (d / "sub" / "notes.txt").write_text("hello")
    return d


def test_manifest_round_trip_and_is_deterministic(tmp_path: Path) -> None:
    d = _artifact_dir(tmp_path)
    meta = {"feature_set": "fs", "params": {"k": 1}, "created": "2024-02-01T00:00:00Z", "metrics": {"x": 0.5}}
    written = write_manifest(d, meta)
    first = (d / "manifest.json").read_bytes()
    write_manifest(d, meta)
    assert (d / "manifest.json").read_bytes() == first
    assert set(written.files) == {"obj.joblib", "sub/notes.txt"}
    read = verify_manifest(d, expected_sha256=manifest_sha256(d))
    assert read == written and read.meta == {"metrics": {"x": 0.5}} and read.created == "2024-02-01T00:00:00Z"
    assert {"numpy", "scikit-learn", "hdbscan", "keras"} <= set(read.versions)
    assert load_joblib_verified(d, "obj.joblib") == {"a": 1}
    with pytest.raises(ValueError, match="meta: must be JSON-serialisable"):
        write_manifest(d, {"metrics": {"x": float("nan")}})


def test_tampered_missing_and_unlisted_files_are_refused(tmp_path: Path) -> None:
    d = _artifact_dir(tmp_path)
    write_manifest(d, {})
    (d / "sub" / "notes.txt").write_text("hellO")
    with pytest.raises(ArtifactIntegrityError, match=r"sub/notes\.txt: sha256 mismatch"):
        verify_manifest(d)
    (d / "sub" / "notes.txt").unlink()
    with pytest.raises(ArtifactIntegrityError, match=r"sub/notes\.txt: listed in the manifest but missing"):
        verify_manifest(d)
    write_manifest(d, {})
    marker = tmp_path / "marker"
    joblib.dump(_Marker(str(marker)), d / "late.joblib")  # added after the manifest was written
    with pytest.raises(ArtifactIntegrityError, match=r"late\.joblib: not listed"):
        load_joblib_verified(d, "late.joblib")
    assert not marker.exists()


def test_tampered_pickle_is_never_unpickled(tmp_path: Path) -> None:
    d = _artifact_dir(tmp_path)
    write_manifest(d, {})
    marker = tmp_path / "marker"
    joblib.dump(_Marker(str(marker)), d / "obj.joblib")  # swap in a hostile payload
    with pytest.raises(ArtifactIntegrityError, match=r"obj\.joblib: sha256 mismatch"):
        load_joblib_verified(d, "obj.joblib")
    assert not marker.exists()


def test_manifest_itself_is_checked(tmp_path: Path) -> None:
    d = _artifact_dir(tmp_path)
    write_manifest(d, {"feature_set": "fs"})
    recorded = manifest_sha256(d)
    data = json.loads((d / "manifest.json").read_text())
    data["files"]["obj.joblib"] = "0" * 64
    (d / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactIntegrityError, match=r"manifest\.json: sha256 \w+ does not match the recorded"):
        verify_manifest(d, expected_sha256=recorded)
    data["files"] = {"../outside.txt": "0" * 64}
    (d / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactIntegrityError, match=r"\.\./outside.txt: path escapes"):
        verify_manifest(d)
    (d / "manifest.json").unlink()
    with pytest.raises(ArtifactIntegrityError, match="manifest missing"):
        verify_manifest(d)


# --- bundle -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def features() -> tuple[pd.DataFrame, pd.Series]:
    X, y = make_blobs(n_samples=600, n_features=10, centers=4, cluster_std=1.0, random_state=0)
    index = pd.Index([f"shop-{i:04d}" for i in range(600)], name="shop_id")
    return pd.DataFrame(X, index=index, columns=[f"f{i}" for i in range(10)]), pd.Series(y, index=index)


@pytest.fixture(scope="module")
def fitted(features: tuple[pd.DataFrame, pd.Series]) -> tuple[ModelBundle, dict]:
    frame, truth = features
    calls: list[tuple[str, int, int]] = []
    bundle, metrics = fit_bundle(frame, "test-v1", PARAMS, progress=lambda *a: calls.append(a), truth=truth)
    metrics["_progress"] = calls
    return bundle, metrics


def test_fit_bundle_metrics_and_progress(fitted: tuple[ModelBundle, dict]) -> None:
    bundle, metrics = fitted
    assert metrics["n"] == 600 and bundle.columns == [f"f{i}" for i in range(10)]
    for space in ("latent", "raw"):
        report = metrics[space]
        assert report["clusters"] >= 2 and report["ari"] is not None
    assert metrics["raw"]["ari"] > 0.9  # well-separated blobs: the raw baseline recovers them
    assert metrics["autoencoder"]["epochs_run"] == 3
    assert {"scaling", "autoencoder", "clustering", "total"} <= set(metrics["seconds"])
    stages = [stage for stage, _, _ in metrics["_progress"]]
    assert stages.count("autoencoder") >= 4 and stages[-1] == "metrics"
    json.dumps({k: v for k, v in metrics.items() if k != "_progress"}, allow_nan=False)


def test_fit_bundle_ignores_input_row_order(
    tmp_path: Path, features: tuple[pd.DataFrame, pd.Series], fitted: tuple[ModelBundle, dict]
) -> None:
    shuffled = features[0].sample(frac=1.0, random_state=5)
    again, _ = fit_bundle(shuffled, "test-v1", PARAMS)
    fitted[0].save(tmp_path / "a", created="2024-02-01")
    again.save(tmp_path / "b", created="2024-02-01")
    assert manifest_sha256(tmp_path / "a") == manifest_sha256(tmp_path / "b")


def test_save_twice_is_byte_identical(tmp_path: Path, fitted: tuple[ModelBundle, dict]) -> None:
    bundle = fitted[0]
    bundle.save(tmp_path / "a", created="2024-02-01", meta={"metrics": {"clusters": 3}})
    bundle.save(tmp_path / "b", created="2024-02-01", meta={"metrics": {"clusters": 3}})
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(
        ["autoencoder.keras", "encoder.npz", "latent_clusterer.joblib", "loss_curve.png", "manifest.json",
         "raw_clusterer.joblib", "scaler.joblib"]
    )
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_round_trip_same_predictions_without_tensorflow(
    tmp_path: Path, features: tuple[pd.DataFrame, pd.Series], fitted: tuple[ModelBundle, dict]
) -> None:
    bundle, frame = fitted[0], features[0]
    bundle.save(tmp_path / "m")
    loaded = ModelBundle.load(tmp_path / "m", expected_sha256=manifest_sha256(tmp_path / "m"))
    assert loaded.feature_set == "test-v1" and loaded.columns == bundle.columns
    assert loaded.params == PARAMS.with_ensemble_for(len(frame))  # the derived ensemble size is kept
    for a, b in zip(bundle.assign(frame), loaded.assign(frame), strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(bundle.assign_raw(frame), loaded.assign_raw(frame), strict=True):
        assert np.array_equal(a, b)
    reordered = frame[list(reversed(frame.columns))]
    assert np.array_equal(loaded.embed(reordered), loaded.embed(frame.to_numpy()))
    code = (
        "import sys, numpy as np\n"
        "from shared.model import ModelBundle\n"
        f"b = ModelBundle.load({str(tmp_path / 'm')!r})\n"
        "labels, strengths = b.assign(np.zeros((3, 10)))\n"
        "assert labels.shape == (3,)\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_tampered_bundle_is_refused(tmp_path: Path, fitted: tuple[ModelBundle, dict]) -> None:
    fitted[0].save(tmp_path / "m")
    path = tmp_path / "m" / "latent_clusterer.joblib"
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.raises(ArtifactIntegrityError, match=r"latent_clusterer\.joblib: sha256 mismatch"):
        ModelBundle.load(tmp_path / "m")


def test_save_refuses_foreign_files(tmp_path: Path, fitted: tuple[ModelBundle, dict]) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "features.csv").write_text("x")
    with pytest.raises(FileExistsError, match=r"features\.csv"):
        fitted[0].save(tmp_path / "m")


def test_bundle_input_errors(fitted: tuple[ModelBundle, dict], features: tuple[pd.DataFrame, pd.Series]) -> None:
    bundle, frame = fitted[0], features[0]
    with pytest.raises(ValueError, match=r"X: missing feature column\(s\) \['f3'\]"):
        bundle.assign(frame.drop(columns="f3"))
    with pytest.raises(ValueError, match=r"X: expected shape \(n, 10\)"):
        bundle.embed(np.zeros((2, 3)))


def test_fit_bundle_rejects_bad_features(features: tuple[pd.DataFrame, pd.Series]) -> None:
    frame = features[0]
    bad = frame.copy()
    bad.iloc[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"features: NaN or infinite values in column\(s\) \['f2'\]"):
        fit_bundle(bad, "x", PARAMS)
    with pytest.raises(ValueError, match="features: duplicate shop_id"):
        fit_bundle(pd.concat([frame, frame.iloc[:1]]), "x", PARAMS)
    with pytest.raises(ValueError, match=r"features: non-numeric column\(s\) \['name'\]"):
        fit_bundle(frame.assign(name="a"), "x", PARAMS)
    with pytest.raises(InsufficientDataError, match=r"only 10 eligible retailer.*MIN_ELIGIBLE_RETAILERS"):
        fit_bundle(frame.iloc[:10], "x", PARAMS)
    with pytest.raises(InsufficientDataError, match="cannot hold two clusters of min_cluster_size=20"):
        fit_bundle(frame.iloc[:39], "x", PARAMS)
    with pytest.raises(ValueError, match="truth: no label for 1 shop_id"):
        fit_bundle(frame, "x", PARAMS, truth=features[1].iloc[1:])


def test_model_params_from_settings_and_validation() -> None:
    params = ModelParams.from_settings(Settings(epochs=7, min_cluster_size=25, min_samples=5), seed=3)
    assert (params.epochs, params.min_cluster_size, params.min_samples, params.seed) == (7, 25, 5, 3)
    assert params.latent_dim == 5 and params.batch_size is None  # derived from the rows (shared.model.schedule)
    seed = ModelParams.from_settings(Settings(profile="seed"))
    fixed = (seed.epochs, seed.batch_size, seed.patience, seed.min_cluster_size, seed.min_samples)
    assert fixed == (30, 300, 5, 50, 50)
    assert seed.selection_density_factors == (1.0,)
    assert EligibilityRule.from_settings(Settings(profile="seed")).partial_years == "count"
    assert EligibilityRule.from_settings(Settings()).partial_years == "last"
    with pytest.raises(ValidationError, match="validation_split"):
        ModelParams(validation_split=1.0)
    with pytest.raises(ValidationError, match="cluster_selection_method"):
        ModelParams(cluster_selection_method="best")
