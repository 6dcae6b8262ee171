"""One trained model version on disk: scaler, numpy encoder, clusterers, checksummed by a manifest.

Loading verifies every checksum before unpickling anything and never needs TensorFlow. Saving the same
bundle twice gives byte-identical files (joblib pickles, deterministic ``.npz``/``.keras`` zips, PNG without
timestamps, manifest without wall-clock time unless ``created`` is passed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.preprocessing import RobustScaler

from shared.artifacts import MANIFEST, Manifest, load_joblib_verified, verify_manifest, write_manifest
from shared.clustering import DensityClusterer
from shared.model.keras_io import save_keras_stable, save_loss_curve
from shared.model.numpy_encoder import Encoder, load_encoder
from shared.model.params import ModelParams

SCALER, ENCODER, KERAS_MODEL = "scaler.joblib", "encoder.npz", "autoencoder.keras"
LATENT_CLUSTERER, RAW_CLUSTERER, LOSS_CURVE = "latent_clusterer.joblib", "raw_clusterer.joblib", "loss_curve.png"
BUNDLE_FILES = (SCALER, ENCODER, KERAS_MODEL, LATENT_CLUSTERER, RAW_CLUSTERER, LOSS_CURVE, MANIFEST)


@dataclass
class ModelBundle:
    """Everything needed to embed and assign retailers for one feature set.

    ``keras_model`` and ``history`` are only present right after training (they are written to
    ``autoencoder.keras`` / ``loss_curve.png`` but not read back: serving uses ``encoder``); with an ensemble of
    autoencoders (``encoder`` an :class:`~shared.model.numpy_encoder.EnsembleEncoder`) they are its first member's.
    ``served_space`` ("latent" or "raw", chosen by :mod:`shared.model.selection`) is the clustering
    :meth:`assign` serves; ``trust`` maps each of its clusters to its bootstrap stability (mean Jaccard).
    """

    feature_set: str
    columns: list[str]
    scaler: RobustScaler
    encoder: Encoder
    latent_clusterer: DensityClusterer
    raw_clusterer: DensityClusterer | None
    params: ModelParams
    served_space: str = "latent"
    trust: dict[int, float] = field(default_factory=dict)
    keras_model: Any = field(default=None, repr=False)
    history: dict[str, list[float]] | None = field(default=None, repr=False)
    manifest: Manifest | None = field(default=None, repr=False)

    # --- inference -----------------------------------------------------------------------------------
    def scale(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Feature rows (DataFrame with the bundle's columns, any order, or an array in column order), scaled."""
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self.columns if c not in X.columns]
            if missing:
                raise ValueError(f"X: missing feature column(s) {missing} for feature set {self.feature_set!r}")
            values = X[self.columns].to_numpy(dtype=np.float64)
        else:
            values = np.asarray(X, dtype=np.float64)
            if values.ndim == 1:
                values = values.reshape(1, -1)
            if values.ndim != 2 or values.shape[1] != len(self.columns):
                raise ValueError(f"X: expected shape (n, {len(self.columns)}), got {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError("X: contains NaN or infinite values")
        return self.scaler.transform(values)

    def embed(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Latent vectors of raw feature rows."""
        return self.encoder.transform(self.scale(X))

    def assign(self, X: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Served cluster ``(labels, strengths)`` of raw feature rows (-1 = noise), in the served space."""
        return self.assign_raw(X) if self.served_space == "raw" else self.assign_latent(X)

    def assign_with_nearest(self, X: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`assign` plus, for the rows it calls noise, :meth:`nearest_cluster` (-1 for the others), from one
        tree query (what a relabel needs)."""
        if self.served_space == "raw":
            if self.raw_clusterer is None:
                raise ValueError("raw_clusterer: this bundle was trained without the raw-feature baseline")
            return self.raw_clusterer.predict_with_nearest(self.scale(X))
        return self.latent_clusterer.predict_with_nearest(self.embed(X))

    def nearest_cluster(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Per raw feature row, the served cluster of its nearest clustered training neighbour (-1: none)."""
        if self.served_space == "raw":
            return self.raw_clusterer.nearest_cluster(self.scale(X))
        return self.latent_clusterer.nearest_cluster(self.embed(X))

    def assign_latent(self, X: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latent cluster ``(labels, strengths)`` of raw feature rows."""
        return self.latent_clusterer.predict(self.embed(X))

    def assign_raw(self, X: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Baseline cluster ``(labels, strengths)`` on the scaled raw features."""
        if self.raw_clusterer is None:
            raise ValueError("raw_clusterer: this bundle was trained without the raw-feature baseline")
        return self.raw_clusterer.predict(self.scale(X))

    # --- persistence ---------------------------------------------------------------------------------
    def save(self, directory: str | Path, created: str | None = None, meta: dict[str, Any] | None = None) -> Manifest:
        """Write the bundle files plus ``manifest.json`` into ``directory``; returns the manifest.

        Earlier bundle files in the directory are replaced; any other file there is refused (it would end
        up in the manifest). ``meta`` (JSON-serialisable, e.g. metrics) is stored in the manifest.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in BUNDLE_FILES:
            (directory / name).unlink(missing_ok=True)
        foreign = sorted(p.name for p in directory.iterdir())
        if foreign:
            raise FileExistsError(f"directory: {directory} holds non-bundle files {foreign}; use an empty directory")
        joblib.dump(self.scaler, directory / SCALER)
        self.encoder.save(directory / ENCODER)
        joblib.dump(self.latent_clusterer, directory / LATENT_CLUSTERER)
        if self.raw_clusterer is not None:
            joblib.dump(self.raw_clusterer, directory / RAW_CLUSTERER)
        if self.keras_model is not None:
            save_keras_stable(self.keras_model, directory / KERAS_MODEL, saved_at=created)
        if self.history:
            save_loss_curve(self.history, directory / LOSS_CURVE)
        info = {**(meta or {}), "columns": list(self.columns), "served_space": self.served_space,
                "trust": {str(k): round(float(v), 6) for k, v in sorted(self.trust.items())}}
        self.manifest = write_manifest(
            directory, {**info, "feature_set": self.feature_set, "params": self.params.model_dump(), "created": created}
        )
        return self.manifest

    @classmethod
    def load(cls, directory: str | Path, expected_sha256: str | None = None) -> ModelBundle:
        """Verify every checksum (and the manifest against ``expected_sha256`` if given), then load."""
        directory = Path(directory)
        manifest = verify_manifest(directory, expected_sha256)
        columns = manifest.meta.get("columns")
        if not isinstance(columns, list) or not columns:
            raise ValueError(f"{directory / MANIFEST}: meta.columns must list the feature columns")
        raw = (
            load_joblib_verified(directory, RAW_CLUSTERER, manifest=manifest)
            if RAW_CLUSTERER in manifest.files
            else None
        )
        return cls(
            feature_set=str(manifest.feature_set),
            columns=[str(c) for c in columns],
            scaler=load_joblib_verified(directory, SCALER, manifest=manifest),
            encoder=load_encoder(directory / ENCODER),
            latent_clusterer=load_joblib_verified(directory, LATENT_CLUSTERER, manifest=manifest),
            raw_clusterer=raw,
            params=ModelParams(**manifest.params),
            served_space=_served_space(manifest.meta.get("served_space", "latent"), raw is not None),
            trust={int(k): float(v) for k, v in (manifest.meta.get("trust") or {}).items()},
            manifest=manifest,
        )


def _served_space(space: Any, has_raw: bool) -> str:
    if space not in ("latent", "raw") or (space == "raw" and not has_raw):
        raise ValueError(f"{MANIFEST}: meta.served_space must be 'latent' or 'raw' (raw needs its clusterer), "
                         f"got {space!r}")
    return str(space)
