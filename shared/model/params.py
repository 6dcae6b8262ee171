"""Hyper-parameters of one model fit (autoencoder, density clustering, model selection), validated by pydantic.

Defaults are the ``Settings`` defaults (one home, :func:`shared.config.settings_default`); a field of the same name
in ``Settings`` sets it (``STABLESEG_<FIELD>``). ``None`` for ``epochs``, ``batch_size``, ``min_cluster_size``,
``min_samples`` and ``autoencoder_members`` means "derived from the data" by the documented rules of
:mod:`shared.model.schedule`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.config import params_from_settings, profile_overrides, settings_default
from shared.model.schedule import ensemble_members, training_schedule


def _d(name: str, **constraints: Any) -> Any:
    """A field whose default is the ``Settings`` default of the same name."""
    return Field(default_factory=lambda: settings_default(name), **constraints)


class ModelParams(BaseModel):
    """Everything :func:`shared.model.fit.fit_bundle` needs besides the data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: Literal["auto", "seed"] = _d("profile")
    latent_dim: int = _d("latent_dim", ge=1)
    epochs: int | None = _d("epochs", ge=1)
    batch_size: int | None = _d("batch_size", ge=1)
    validation_split: float = _d("validation_split", ge=0.0, lt=1.0)
    patience: int = _d("patience", ge=0)
    l2: float = _d("l2", ge=0.0)
    learning_rate: float = _d("learning_rate", gt=0.0)
    seed: int = _d("seed")
    train_target_steps: int = _d("train_target_steps", ge=1)
    train_batch_rows: int = _d("train_batch_rows", ge=1)
    train_batch_min: int = _d("train_batch_min", ge=1)
    train_batch_max: int = _d("train_batch_max", ge=1)
    train_epochs_min: int = _d("train_epochs_min", ge=1)
    train_epochs_max: int = _d("train_epochs_max", ge=1)
    train_steps_per_execution: int = _d("train_steps_per_execution", ge=1)
    min_cluster_size: int | None = _d("min_cluster_size", ge=2)
    min_cluster_share: float = _d("min_cluster_share", gt=0.0, le=0.5)
    min_cluster_size_floor: int = _d("min_cluster_size_floor", ge=2)
    min_cluster_size_ceiling: int = _d("min_cluster_size_ceiling", ge=2)
    min_samples: int | None = _d("min_samples", ge=1)
    min_samples_floor: int = _d("min_samples_floor", ge=1)
    cluster_selection_method: Literal["eom", "leaf"] = _d("cluster_selection_method")
    cluster_selection_epsilon: float = _d("cluster_selection_epsilon", ge=0.0)
    raw_baseline: bool = _d("raw_baseline")
    raw_baseline_max_rows: int | None = _d("raw_baseline_max_rows", ge=100)
    cluster_fit_max_rows: int | None = _d("cluster_fit_max_rows", ge=100)
    autoencoder_max_rows: int | None = _d("autoencoder_max_rows", ge=100)
    autoencoder_members: int | None = _d("autoencoder_members", ge=1)
    autoencoder_members_min: int = _d("autoencoder_members_min", ge=1)
    autoencoder_members_max: int = _d("autoencoder_members_max", ge=1)
    autoencoder_ensemble_rows: int = _d("autoencoder_ensemble_rows", ge=1)
    autoencoder_member_rows: int = _d("autoencoder_member_rows", ge=100)
    min_eligible_retailers: int = _d("min_eligible_retailers", ge=2)
    selection_density_factors: tuple[float, ...] = Field(
        default_factory=lambda: tuple(settings_default("selection_density_factors")), min_length=1
    )
    selection_sample_rows: int = _d("selection_sample_rows", ge=100)
    selection_bootstrap_rounds: int = _d("selection_bootstrap_rounds", ge=1)
    selection_bootstrap_fraction: float = _d("selection_bootstrap_fraction", gt=0.0, lt=1.0)
    selection_seed_agreement_min: float = _d("selection_seed_agreement_min", ge=0.0, le=1.0)
    selection_score_tolerance: float = _d("selection_score_tolerance", ge=0.0, le=1.0)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> ModelParams:
        """Every field the settings object has (e.g. ``STABLESEG_EPOCHS``), then the profile, then ``overrides``."""
        return params_from_settings(cls, settings, **{**profile_overrides(settings, cls), **overrides})

    def with_ensemble_for(self, n_rows: int) -> ModelParams:
        """These parameters with the ensemble size derived for ``n_rows`` retailers (when not set)."""
        return self.model_copy(update={"autoencoder_members": ensemble_members(n_rows, self)})

    def autoencoder_kwargs(self, n_rows: int) -> dict[str, Any]:
        """Keyword arguments of :class:`~shared.model.autoencoder.Autoencoder` for ``n_rows`` training rows."""
        schedule = training_schedule(n_rows, self)
        fixed = self.model_dump(include={"latent_dim", "validation_split", "patience", "l2", "learning_rate", "seed"})
        return {**fixed, "epochs": schedule.epochs, "batch_size": schedule.batch_size,
                "steps_per_execution": self.train_steps_per_execution}
