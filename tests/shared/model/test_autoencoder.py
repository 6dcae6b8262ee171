"""Autoencoder determinism, numpy-encoder parity, deterministic saving."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from shared.model.autoencoder import LATENT_LAYER, Autoencoder, save_keras_stable, save_loss_curve
from shared.model.numpy_encoder import NumpyEncoder

pytestmark = pytest.mark.xdist_group("model")

ROOT = Path(__file__).resolve().parents[3]


def make_data() -> np.ndarray:
    X, _ = make_blobs(n_samples=600, n_features=10, centers=4, random_state=0)
    X[:, 0] *= 50.0  # one large-scale column, like unscaled sales volumes
    return X


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return make_data()


@pytest.fixture(scope="module")
def fitted(data: np.ndarray) -> Autoencoder:
    return Autoencoder(epochs=3, seed=42).fit(data)


def _weights_equal(a: Autoencoder, b: Autoencoder) -> bool:
    wa, wb = a.model_.get_weights(), b.model_.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))


def test_same_seed_gives_bitwise_identical_weights(data: np.ndarray, fitted: Autoencoder) -> None:
    again = Autoencoder(epochs=3, seed=42).fit(data)
    assert _weights_equal(fitted, again)
    assert fitted.history_ == again.history_


def test_other_seed_gives_other_weights(data: np.ndarray, fitted: Autoencoder) -> None:
    other = Autoencoder(epochs=3, seed=7).fit(data)
    assert not _weights_equal(fitted, other)


def test_architecture_and_learned_attributes(data: np.ndarray, fitted: Autoencoder) -> None:
    model = fitted.model_
    assert fitted.n_features_in_ == 10
    assert model.get_layer("encoder_hidden").units == 5 and not model.get_layer("encoder_hidden").use_bias
    assert model.get_layer("latent_dense").units == 5 and not model.get_layer("latent_dense").use_bias
    assert type(model.get_layer(LATENT_LAYER)).__name__ == "LayerNormalization"
    assert model.output_shape == (None, 10)
    assert set(fitted.history_) == {"loss", "mae", "val_loss", "val_mae"}
    assert len(fitted.history_["loss"]) == 3
    latent = fitted.transform(data)
    assert latent.shape == (600, 5) and latent.dtype == np.float64
    # LayerNorm output (gamma=1, beta=0 barely moved after 3 epochs): rows are centred
    assert np.abs(latent.mean(axis=1)).max() < 0.1


def test_early_stopping_restores_best_weights() -> None:
    rng = np.random.default_rng(0)
    # Keras validates on the tail rows: make them unlike the training rows so val_loss soon gets worse
    X = np.vstack([rng.normal(size=(195, 10)), rng.normal(loc=5.0, scale=3.0, size=(105, 10))])
    ae = Autoencoder(epochs=8, patience=2, batch_size=100, learning_rate=0.05, seed=1).fit(X)
    val_loss = ae.history_["val_loss"]
    assert len(val_loss) < 8, "early stopping should have ended training"
    assert int(np.argmin(val_loss)) < len(val_loss) - 1, "the best epoch should not be the last one"
    val = X[195:].astype(np.float32)
    loss = ae.model_.evaluate(val, val, batch_size=ae.batch_size, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(min(val_loss), rel=1e-4)  # the best epoch's weights were restored


def test_numpy_encoder_matches_keras_latent(data: np.ndarray, fitted: Autoencoder) -> None:
    encoder = fitted.to_numpy_encoder()
    assert (encoder.n_features_in_, encoder.latent_dim) == (10, 5)
    np.testing.assert_allclose(encoder.transform(data), fitted.transform(data), atol=1e-5, rtol=0)


def test_numpy_encoder_save_load_is_byte_stable(tmp_path: Path, data: np.ndarray, fitted: Autoencoder) -> None:
    encoder = fitted.to_numpy_encoder()
    first, second = encoder.save(tmp_path / "a.npz"), encoder.save(tmp_path / "b.npz")
    assert first.read_bytes() == second.read_bytes()
    loaded = NumpyEncoder.load(first)
    assert np.array_equal(loaded.transform(data), encoder.transform(data))


def test_numpy_encoder_never_imports_tensorflow(tmp_path: Path, fitted: Autoencoder) -> None:
    path = fitted.to_numpy_encoder().save(tmp_path / "enc.npz")
    code = (
        "import sys, numpy as np\n"
        "from shared.model import NumpyEncoder, ModelBundle\n"
        f"z = NumpyEncoder.load({str(path)!r}).transform(np.zeros((2, 10)))\n"
        "assert z.shape == (2, 5)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_bad_input_names_the_problem(data: np.ndarray, fitted: Autoencoder) -> None:
    bad = data.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="X: contains NaN"):
        Autoencoder(epochs=1).fit(bad)
    with pytest.raises(ValueError, match="X: expected a 2-D array"):
        Autoencoder(epochs=1).fit(data[:, 0])
    with pytest.raises(ValueError, match="X: expected 10 columns"):
        fitted.transform(data[:, :4])
    with pytest.raises(ValueError, match="X: expected shape"):
        fitted.to_numpy_encoder().transform(data[:, :4])
    with pytest.raises(ValueError, match="validation_split"):
        Autoencoder(validation_split=1.5).fit(data)


def test_keras_file_is_byte_stable_and_loadable(tmp_path: Path, data: np.ndarray, fitted: Autoencoder) -> None:
    import keras

    a = fitted.save_keras(tmp_path / "a.keras", saved_at="2024-01-31")
    b = save_keras_stable(fitted.model_, tmp_path / "b.keras", saved_at="2024-01-31")
    assert a.read_bytes() == b.read_bytes()
    model = keras.models.load_model(a)
    loaded, original = model.get_weights(), fitted.model_.get_weights()
    assert len(loaded) == len(original) and all(np.array_equal(x, y) for x, y in zip(loaded, original, strict=True))
    assert model.get_layer(LATENT_LAYER).epsilon == fitted.model_.get_layer(LATENT_LAYER).epsilon
    with pytest.raises(ValueError, match=r"path: must end with \.keras"):
        save_keras_stable(fitted.model_, tmp_path / "x.h5")


def test_keras_file_is_identical_across_processes(tmp_path: Path, fitted: Autoencoder) -> None:
    here = fitted.save_keras(tmp_path / "here.keras", saved_at="t")
    code = (
        "import sys\n"
        "from tests.shared.model.test_autoencoder import make_data\n"
        "from shared.model.autoencoder import Autoencoder\n"
        f"Autoencoder(epochs=3, seed=42).fit(make_data()).save_keras({str(tmp_path / 'there.keras')!r}, saved_at='t')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert here.read_bytes() == (tmp_path / "there.keras").read_bytes()


def test_loss_curve_png(tmp_path: Path, fitted: Autoencoder) -> None:
    a = save_loss_curve(fitted.history_, tmp_path / "a.png")
    b = save_loss_curve(fitted.history_, tmp_path / "b.png")
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(ValueError, match="history: missing the 'loss'"):
        save_loss_curve({"val_loss": [1.0]}, tmp_path / "c.png")


def test_steps_per_execution_changes_speed_only(data: np.ndarray) -> None:
    """Several steps per graph call run the same batches in the same order: the same weights, bit for bit."""
    one = Autoencoder(epochs=3, seed=42, batch_size=16, steps_per_execution=1).fit(data)
    many = Autoencoder(epochs=3, seed=42, batch_size=16, steps_per_execution=8).fit(data)
    assert _weights_equal(one, many)
