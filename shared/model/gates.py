"""Quality gates on the served clustering: the trainer registers a failing model as rejected (with the reason),
the batch pipeline exits 4 with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.config import SettingsParams


@dataclass(frozen=True)
class Gates(SettingsParams, prefix="gate_"):
    """Limits on the served clustering (``Settings.gate_*``, whose defaults these are)."""

    min_clusters: int
    max_noise_ratio: float
    max_largest_share: float

    def __post_init__(self) -> None:
        if self.min_clusters < 1:
            raise ValueError(f"gate_min_clusters: must be >= 1, got {self.min_clusters}")
        for name, value in (("gate_max_noise_ratio", self.max_noise_ratio),
                            ("gate_max_largest_share", self.max_largest_share)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must be within [0, 1], got {value}")

    def failures(self, report: dict[str, Any]) -> list[str]:
        """Every gate the clustering ``report`` (``shared.metrics.clustering_report``) fails, as readable text."""
        found = []
        clusters, noise, largest = report["clusters"], report["noise_ratio"], report["largest_share"]
        if clusters < self.min_clusters:
            found.append(f"clusters {clusters} < gate_min_clusters {self.min_clusters}")
        if noise > self.max_noise_ratio:
            found.append(f"noise_ratio {noise:.4f} > gate_max_noise_ratio {self.max_noise_ratio:g}")
        if largest > self.max_largest_share:
            found.append(f"largest_share {largest:.4f} > gate_max_largest_share {self.max_largest_share:g}")
        return found

    def verdict(self, report: dict[str, Any]) -> str | None:
        """None when the model passes, else the rejection reason."""
        failures = self.failures(report)
        return "quality gate failed: " + "; ".join(failures) if failures else None
