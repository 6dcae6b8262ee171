"""The seed's dense autoencoder (TensorFlow / Keras, CPU) as a scikit-learn transformer.

TensorFlow is imported lazily inside this module only, so services that merely embed (with
:class:`~shared.model.numpy_encoder.NumpyEncoder`) never load it. Training is deterministic: the same
data and seed give bitwise identical weights (global seeds plus TensorFlow op determinism).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from shared.config import SEED_PROFILE, settings_default
from shared.estimator import keep_params
from shared.model.keras_io import save_keras_stable, save_loss_curve
from shared.model.numpy_encoder import BatchNormParams, NumpyEncoder
from shared.progress import Progress

LATENT_LAYER = "latent_space"
__all__ = ["LATENT_LAYER", "Autoencoder", "import_keras", "numpy_encoder_from_keras", "save_keras_stable",
           "save_loss_curve"]

def import_keras() -> Any:
    """Import Keras (TensorFlow backend) with deterministic CPU ops; cheap after the first call.

    Long-lived trainers may call it once at start-up to pay TensorFlow's import cost early.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ chatter; Python errors still raise
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # psycopg's bundled libpq/OpenSSL must load before TensorFlow's: the other way round, the first TLS connection
    # to PostgreSQL aborts the process (free(): invalid pointer), tests/shared/storage/test_postgres_tls.py checks it
    importlib.import_module("psycopg")
    import keras
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    return keras


_keras = import_keras  # short internal name (kept for callers that already use it)


def _check_matrix(X: Any, name: str = "X") -> np.ndarray:
    x = np.asarray(X, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got {x.ndim} dimension(s)")
    if x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"{name}: needs at least 2 rows and 2 columns, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x


class Autoencoder(BaseEstimator, TransformerMixin):
    """Input n -> BN -> Dense(n//2) -> BN -> Dense(latent) -> LayerNorm ``latent_space`` -> Dense(n//2) -> Dense(n).

    Learned attributes: ``model_`` (the Keras model), ``history_`` (dict of per-epoch lists), ``n_features_in_``.
    """

    def __init__(
        self,
        latent_dim: int = settings_default("latent_dim"),  # type: ignore[assignment]
        epochs: int = SEED_PROFILE["epochs"],  # type: ignore[assignment]
        batch_size: int = SEED_PROFILE["batch_size"],  # type: ignore[assignment]
        validation_split: float = settings_default("validation_split"),  # type: ignore[assignment]
        patience: int = settings_default("patience"),  # type: ignore[assignment]
        l2: float = settings_default("l2"),  # type: ignore[assignment]
        learning_rate: float = settings_default("learning_rate"),  # type: ignore[assignment]
        seed: int = settings_default("seed"),  # type: ignore[assignment]
        steps_per_execution: int = settings_default("train_steps_per_execution"),  # type: ignore[assignment]
        verbose: int = 0,
    ) -> None:
        keep_params(self, locals())

    def _build(self, keras: Any, n: int) -> Any:
        # Explicit names and one regularizer per layer: Keras would otherwise auto-number names ("adam_1") and
        # record a shared object's id() in config.json, making the saved .keras file differ between fits.
        layers = keras.layers

        def reg() -> Any:
            return keras.regularizers.L2(self.l2)

        hidden = max(n // 2, 1)
        inputs = keras.Input(shape=(n,), name="features")
        x = layers.BatchNormalization(name="bn_input")(inputs)
        x = layers.Dense(hidden, activation="relu", use_bias=False, kernel_regularizer=reg(), name="encoder_hidden")(x)
        x = layers.BatchNormalization(name="bn_hidden")(x)
        x = layers.Dense(self.latent_dim, use_bias=False, kernel_regularizer=reg(), name="latent_dense")(x)
        latent = layers.LayerNormalization(name=LATENT_LAYER)(x)
        x = layers.Dense(hidden, activation="relu", name="decoder_hidden")(latent)
        outputs = layers.Dense(n, name="reconstruction")(x)
        model = keras.Model(inputs, outputs, name="autoencoder")
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate, name="adam"), loss="mse", metrics=["mae"],
                      steps_per_execution=self.steps_per_execution)
        return model

    def fit(self, X: Any, y: Any = None, progress: Progress | None = None) -> Autoencoder:
        """Train on ``X`` (reconstruction); ``y`` is ignored; ``progress("autoencoder", epochs done, epochs)`` after
        every epoch. Returns self."""
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim: must be >= 1, got {self.latent_dim}")
        if not 0.0 <= self.validation_split < 1.0:
            raise ValueError(f"validation_split: must be in [0, 1), got {self.validation_split}")
        x = _check_matrix(X)
        keras = _keras()
        keras.utils.set_random_seed(self.seed)
        self.model_ = self._build(keras, x.shape[1])
        callbacks = []
        if self.validation_split > 0:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=self.patience, restore_best_weights=True
                )
            )
        if progress is not None:
            total = self.epochs
            callbacks.append(
                keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, _: progress("autoencoder", epoch + 1, total))
            )
        history = self.model_.fit(
            x,
            x,
            epochs=self.epochs,
            batch_size=self.batch_size,
            validation_split=self.validation_split,
            shuffle=True,
            callbacks=callbacks,
            verbose=self.verbose,
        )
        self.history_ = {key: [float(v) for v in values] for key, values in history.history.items()}
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Latent vectors (the ``latent_space`` output) as float64."""
        check_is_fitted(self, "model_")
        x = _check_matrix(X)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"X: expected {self.n_features_in_} columns, got {x.shape[1]}")
        keras = _keras()
        encoder = keras.Model(self.model_.inputs, self.model_.get_layer(LATENT_LAYER).output)
        return np.asarray(encoder.predict(x, batch_size=4096, verbose=0), dtype=np.float64)

    def to_numpy_encoder(self) -> NumpyEncoder:
        """The encoder half as a TensorFlow-free :class:`NumpyEncoder`."""
        check_is_fitted(self, "model_")
        return numpy_encoder_from_keras(self.model_)

    def save_keras(self, path: str | Path, saved_at: str | None = None) -> Path:
        """Save the Keras model as a byte-stable ``.keras`` file (see :func:`save_keras_stable`)."""
        check_is_fitted(self, "model_")
        return save_keras_stable(self.model_, path, saved_at=saved_at)


def numpy_encoder_from_keras(model: Any) -> NumpyEncoder:
    """Copy the encoder weights of a model built by :class:`Autoencoder` into a :class:`NumpyEncoder`."""

    def bn(name: str) -> BatchNormParams:
        layer = model.get_layer(name)
        gamma, beta, mean, var = (np.asarray(w, dtype=np.float64) for w in layer.get_weights())
        return BatchNormParams(gamma, beta, mean, var, epsilon=float(layer.epsilon))

    ln = model.get_layer(LATENT_LAYER)
    ln_gamma, ln_beta = (np.asarray(w, dtype=np.float64) for w in ln.get_weights())
    return NumpyEncoder(
        bn_input=bn("bn_input"),
        hidden_kernel=np.asarray(model.get_layer("encoder_hidden").get_weights()[0], dtype=np.float64),
        bn_hidden=bn("bn_hidden"),
        latent_kernel=np.asarray(model.get_layer("latent_dense").get_weights()[0], dtype=np.float64),
        ln_gamma=ln_gamma,
        ln_beta=ln_beta,
        ln_epsilon=float(ln.epsilon),
    )
