"""Hyper-parameters of one model fit (autoencoder + both clusterers), validated by pydantic."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelParams(BaseModel):
    """Everything :func:`shared.model.fit.fit_bundle` needs besides the data. Defaults are the seed's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latent_dim: int = Field(5, ge=1)
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(300, ge=1)
    validation_split: float = Field(0.35, ge=0.0, lt=1.0)
    patience: int = Field(5, ge=0)
    l2: float = Field(1e-4, ge=0.0)
    learning_rate: float = Field(1e-3, gt=0.0)
    seed: int = 42
    min_cluster_size: int = Field(50, ge=2)
    min_samples: int | None = Field(None, ge=1)
    cluster_selection_method: Literal["eom", "leaf"] = "eom"
    cluster_selection_epsilon: float = Field(0.0, ge=0.0)
    raw_baseline: bool = Field(True, description="also cluster the scaled raw features (the seed's baseline)")
    raw_baseline_max_rows: int | None = Field(
        20_000, ge=100,
        description="fit the raw baseline on at most this many rows (evenly spaced in shop_id order; None = all): "
        "HDBSCAN in 18-29 raw dimensions costs ~2 min at 55k rows vs ~12 s at 20k",
    )

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> ModelParams:
        """Take every field the settings object has (e.g. ``STABLESEG_EPOCHS``), then ``overrides``."""
        values = {name: getattr(settings, name) for name in cls.model_fields if hasattr(settings, name)}
        values.update(overrides)
        return cls(**values)

    def autoencoder_kwargs(self) -> dict[str, Any]:
        return self.model_dump(
            include={"latent_dim", "epochs", "batch_size", "validation_split", "patience", "l2", "learning_rate",
                     "seed"}
        )

    def clusterer_kwargs(self) -> dict[str, Any]:
        return self.model_dump(
            include={"min_cluster_size", "min_samples", "cluster_selection_method", "cluster_selection_epsilon"}
        )
