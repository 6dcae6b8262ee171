"""Latent assignment of feature rows with the current bundle (the vectorised predict lives in shared/)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared.hdbscan_predict import approximate_predict
from shared.model.bundle import ModelBundle

__all__ = ["approximate_predict", "predict", "predict_with_nearest"]


def predict(bundle: ModelBundle, features: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``bundle.assign``: latent ``(labels, strengths)`` of raw feature rows (vectorised approximate_predict)."""
    return bundle.assign(features)


def predict_with_nearest(bundle: ModelBundle, features: pd.DataFrame | np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``bundle.assign_with_nearest``: ``(labels, strengths, nearest)``, nearest cluster for the noise rows."""
    return bundle.assign_with_nearest(features)
