"""A feature set: a named, versioned definition computed two ways (batch over all shops, one shop at a time)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import pandas as pd

from shared.features.monthly import ShopMonths
from shared.features.panel import Panel


class FeatureSet(ABC):
    """One definition, two computations that must agree to 1e-9.

    ``compute_batch``: vectorised numpy over every shop of a monthly table (index shop_id sorted, float64
    columns in ``columns`` order). ``compute_one``: the per-shop function the streaming service calls on
    every update (float64 vector, same order).
    """

    name: ClassVar[str]
    version: ClassVar[int]
    columns: ClassVar[tuple[str, ...]]
    descriptions: ClassVar[dict[str, str]]  # column -> what it measures and why (one line each)

    def compute_batch(self, monthly: pd.DataFrame | Panel) -> pd.DataFrame:
        """Features of every shop in a monthly table (or an already built ``Panel``)."""
        panel = Panel.from_monthly(monthly)
        values = self._batch(panel) if panel.n_shops else np.zeros((0, len(self.columns)))
        return pd.DataFrame(values, index=panel.shops, columns=list(self.columns), dtype=np.float64)

    @abstractmethod
    def _batch(self, panel: Panel) -> np.ndarray:
        """(n_shops, n_columns) float64 matrix for a non-empty panel."""

    @abstractmethod
    def compute_one(self, shop: ShopMonths) -> np.ndarray:
        """Feature vector of one shop (float64, ``columns`` order)."""

    def __repr__(self) -> str:
        return f"<FeatureSet {self.name} v{self.version}: {len(self.columns)} columns>"
