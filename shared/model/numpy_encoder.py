"""Pure-numpy forward pass of the autoencoder's encoder half (no TensorFlow needed to embed).

The encoder is ``BatchNorm -> Dense(relu, no bias) -> BatchNorm -> Dense(linear, no bias) -> LayerNorm``;
BatchNorm runs in inference mode (moving statistics). An :class:`EnsembleEncoder` concatenates the latent
vectors of several such encoders (autoencoders trained with other seeds). Saved as a deterministic ``.npz``
(fixed zip timestamps) so the same weights always give the same bytes; :func:`load_encoder` reads either kind.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FORMAT_VERSION = 1
_ENSEMBLE_FORMAT_VERSION = 2


@dataclass(frozen=True)
class BatchNormParams:
    """Inference-mode batch normalisation: ``(x - mean) / sqrt(var + eps) * gamma + beta``."""

    gamma: np.ndarray
    beta: np.ndarray
    moving_mean: np.ndarray
    moving_variance: np.ndarray
    epsilon: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.moving_mean) / np.sqrt(self.moving_variance + self.epsilon) * self.gamma + self.beta


@dataclass(frozen=True)
class NumpyEncoder:
    """Embeds scaled feature rows into the latent space with numpy only."""

    bn_input: BatchNormParams
    hidden_kernel: np.ndarray
    bn_hidden: BatchNormParams
    latent_kernel: np.ndarray
    ln_gamma: np.ndarray
    ln_beta: np.ndarray
    ln_epsilon: float

    @property
    def n_features_in_(self) -> int:
        return int(self.hidden_kernel.shape[0])

    @property
    def latent_dim(self) -> int:
        return int(self.latent_kernel.shape[1])

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Latent vectors (float64, shape ``(n, latent_dim)``) of the scaled rows ``X``."""
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise ValueError(f"X: expected shape (n, {self.n_features_in_}), got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("X: contains NaN or infinite values")
        h = np.maximum(self.bn_input(x) @ self.hidden_kernel, 0.0)
        z = self.bn_hidden(h) @ self.latent_kernel
        mean = z.mean(axis=1, keepdims=True)
        var = z.var(axis=1, keepdims=True)
        return (z - mean) / np.sqrt(var + self.ln_epsilon) * self.ln_gamma + self.ln_beta

    # --- persistence ---------------------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {"format_version": np.array(_FORMAT_VERSION)}
        for prefix, bn in (("bn_input", self.bn_input), ("bn_hidden", self.bn_hidden)):
            for field in ("gamma", "beta", "moving_mean", "moving_variance"):
                arrays[f"{prefix}.{field}"] = np.asarray(getattr(bn, field), dtype=np.float64)
            arrays[f"{prefix}.epsilon"] = np.array(bn.epsilon, dtype=np.float64)
        arrays["hidden_kernel"] = np.asarray(self.hidden_kernel, dtype=np.float64)
        arrays["latent_kernel"] = np.asarray(self.latent_kernel, dtype=np.float64)
        arrays["ln.gamma"] = np.asarray(self.ln_gamma, dtype=np.float64)
        arrays["ln.beta"] = np.asarray(self.ln_beta, dtype=np.float64)
        arrays["ln.epsilon"] = np.array(self.ln_epsilon, dtype=np.float64)
        return arrays

    def save(self, path: str | Path) -> Path:
        """Write a byte-stable ``.npz`` (sorted members, fixed timestamps, no pickle)."""
        return _write_npz(path, self._arrays())

    @classmethod
    def load(cls, path: str | Path) -> NumpyEncoder:
        """Read an encoder written by :meth:`save` (arrays only, ``allow_pickle=False``)."""
        arrays = _read_npz(path)
        version = int(arrays.get("format_version", -1))
        if version != _FORMAT_VERSION:
            raise ValueError(f"{path}: format_version {version} is not supported (expected {_FORMAT_VERSION})")
        return cls._from_arrays(arrays)

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray]) -> NumpyEncoder:
        def bn(prefix: str) -> BatchNormParams:
            return BatchNormParams(
                *(arrays[f"{prefix}.{f}"] for f in ("gamma", "beta", "moving_mean", "moving_variance")),
                epsilon=float(arrays[f"{prefix}.epsilon"]),
            )

        return cls(
            bn_input=bn("bn_input"),
            hidden_kernel=arrays["hidden_kernel"],
            bn_hidden=bn("bn_hidden"),
            latent_kernel=arrays["latent_kernel"],
            ln_gamma=arrays["ln.gamma"],
            ln_beta=arrays["ln.beta"],
            ln_epsilon=float(arrays["ln.epsilon"]),
        )


@dataclass(frozen=True)
class EnsembleEncoder:
    """Several encoders of the same features; the latent vector is their latent vectors side by side."""

    members: tuple[NumpyEncoder, ...]

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("members: an ensemble needs at least one encoder")
        widths = {m.n_features_in_ for m in self.members}
        if len(widths) != 1:
            raise ValueError(f"members: encoders of different feature counts {sorted(widths)}")

    @property
    def n_features_in_(self) -> int:
        return self.members[0].n_features_in_

    @property
    def latent_dim(self) -> int:
        return sum(m.latent_dim for m in self.members)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Latent vectors (float64, shape ``(n, latent_dim)``): each member's, concatenated in member order."""
        return np.hstack([m.transform(X) for m in self.members])

    def save(self, path: str | Path) -> Path:
        """One byte-stable ``.npz`` holding every member's arrays (``m<i>.`` prefixes)."""
        arrays: dict[str, np.ndarray] = {"format_version": np.array(_ENSEMBLE_FORMAT_VERSION),
                                         "members": np.array(len(self.members))}
        for i, member in enumerate(self.members):
            arrays |= {f"m{i}.{k}": v for k, v in member._arrays().items() if k != "format_version"}
        return _write_npz(path, arrays)

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray]) -> EnsembleEncoder:
        count = int(arrays["members"])
        return cls(tuple(NumpyEncoder._from_arrays({k.split(".", 1)[1]: v for k, v in arrays.items()
                                                    if k.startswith(f"m{i}.")}) for i in range(count)))


Encoder = NumpyEncoder | EnsembleEncoder


def load_encoder(path: str | Path) -> Encoder:
    """Read an encoder written by :meth:`NumpyEncoder.save` or :meth:`EnsembleEncoder.save`."""
    arrays = _read_npz(path)
    version = int(arrays.get("format_version", -1))
    if version == _FORMAT_VERSION:
        return NumpyEncoder._from_arrays(arrays)
    if version == _ENSEMBLE_FORMAT_VERSION:
        return EnsembleEncoder._from_arrays(arrays)
    raise ValueError(f"{path}: format_version {version} is not supported "
                     f"(expected {_FORMAT_VERSION} or {_ENSEMBLE_FORMAT_VERSION})")


def encoder_of(members: list[NumpyEncoder]) -> Encoder:
    """One member is served as itself (its file stays the single-encoder format); more as an ensemble."""
    return members[0] if len(members) == 1 else EnsembleEncoder(tuple(members))


def _write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in sorted(arrays.items()):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH), buffer.getvalue())
    return path


def _read_npz(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(Path(path), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
