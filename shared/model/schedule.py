"""The rules that derive the training schedule and the density parameters from the data (documented in README).

Training: the autoencoder needs a number of gradient steps, not a number of epochs. With ``t`` training rows
(``n x (1 - validation_split)``) the batch is ``t / train_batch_rows`` within ``[train_batch_min,
train_batch_max]`` and the epoch budget is ``train_target_steps`` / steps per epoch within ``[train_epochs_min,
train_epochs_max]``; early stopping on the validation loss ends the fit sooner (best weights restored).

Ensemble: ``autoencoder_members = autoencoder_ensemble_rows / n`` within ``[autoencoder_members_min,
autoencoder_members_max]``: one autoencoder's embedding depends on its seed most where the data are few, and a
member costs its gradient steps, so small data get more members at about the same price as large data get four.

Density: ``min_cluster_size = min_cluster_share x n`` within ``[min_cluster_size_floor,
min_cluster_size_ceiling]`` (a segment worth acting on holds at least that share of the retailers), and
``min_samples = min_cluster_size / 10``, at least ``min_samples_floor`` (small core neighbourhoods keep sparse
edges of a segment in it instead of calling them noise). Explicit settings win over both rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.model.params import ModelParams


@dataclass(frozen=True)
class TrainingSchedule:
    """Batch size and epoch budget of one autoencoder fit."""

    batch_size: int
    epochs: int


@dataclass(frozen=True)
class Density:
    """HDBSCAN's two density parameters."""

    min_cluster_size: int
    min_samples: int

    def as_dict(self) -> dict[str, int]:
        return {"min_cluster_size": self.min_cluster_size, "min_samples": self.min_samples}


def _clip(value: float, low: int, high: int) -> int:
    return int(min(max(round(value), low), max(low, high)))


def training_schedule(n_rows: int, params: ModelParams) -> TrainingSchedule:
    """The schedule for ``n_rows`` rows (explicit ``epochs`` / ``batch_size`` are kept)."""
    train_rows = max(1, int(n_rows * (1.0 - params.validation_split)))
    batch = params.batch_size or _clip(train_rows / params.train_batch_rows, params.train_batch_min,
                                       params.train_batch_max)
    steps_per_epoch = math.ceil(train_rows / batch)
    epochs = params.epochs or _clip(math.ceil(params.train_target_steps / steps_per_epoch), params.train_epochs_min,
                                    params.train_epochs_max)
    return TrainingSchedule(batch_size=int(batch), epochs=int(epochs))


def ensemble_members(n_rows: int, params: ModelParams) -> int:
    """How many autoencoders the ensemble for ``n_rows`` retailers has (an explicit ``autoencoder_members`` wins)."""
    if params.autoencoder_members is not None:
        return params.autoencoder_members
    return _clip(params.autoencoder_ensemble_rows // max(1, n_rows), params.autoencoder_members_min,
                 params.autoencoder_members_max)


def density(n_rows: int, params: ModelParams, factor: float = 1.0) -> Density:
    """Density parameters for ``n_rows`` retailers; ``factor`` scales the derived min_cluster_size (candidates)."""
    if params.min_cluster_size is not None:
        base = params.min_cluster_size
    else:
        base = _clip(params.min_cluster_share * n_rows, params.min_cluster_size_floor, params.min_cluster_size_ceiling)
    mcs = max(2, round(base * factor))
    samples = params.min_samples if params.min_samples is not None else max(params.min_samples_floor, mcs // 10)
    return Density(min_cluster_size=int(mcs), min_samples=int(samples))


def scaled_density(full: Density, n_full: int, n_sample: int, floor: int) -> Density:
    """The same density on a sample of ``n_sample`` of ``n_full`` rows (cluster sizes shrink with the sample)."""
    if n_sample >= n_full:
        return full
    ratio = n_sample / n_full
    mcs = max(floor, round(full.min_cluster_size * ratio))
    return Density(min_cluster_size=int(mcs), min_samples=int(min(full.min_samples, mcs)))
