"""The per-shop feature frame: ``eligible``, ``as_of``, then the feature set's columns (index shop_id)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared.features.base import FeatureSet
from shared.features.eligibility import EligibilityRule
from shared.features.monthly import ShopMonths, monthly_panel
from shared.features.panel import Panel
from shared.features.registry import DEFAULT_FEATURE_SET, get_feature_set
from shared.logging import get_logger

log = get_logger(__name__)


def shop_as_of(shop: ShopMonths) -> str:
    """The shop's latest active month as "YYYY-MM"."""
    return f"{int(shop.year[-1]):04d}-{int(shop.month[-1]):02d}"


def _as_of(panel: Panel) -> np.ndarray:
    periods, inverse = np.unique(panel.period[panel.starts + panel.counts - 1], return_inverse=True)
    labels = np.array([f"{p // 12:04d}-{p % 12 + 1:02d}" for p in periods.tolist()], dtype=object)
    return labels[inverse]


def features_from_monthly(
    monthly: pd.DataFrame | Panel, feature_set: str | FeatureSet, rule: EligibilityRule
) -> pd.DataFrame:
    """``build_features`` from an already built monthly table."""
    fs = get_feature_set(feature_set)
    panel = Panel.from_monthly(monthly)
    head = pd.DataFrame(
        {"eligible": rule.eligible(panel).to_numpy(), "as_of": _as_of(panel) if panel.n_shops else []},
        index=panel.shops,
    )
    head["as_of"] = head["as_of"].astype(str)
    return pd.concat([head, fs.compute_batch(panel)], axis=1)


def build_features(
    sales: pd.DataFrame, feature_set: str | FeatureSet = DEFAULT_FEATURE_SET, rule: EligibilityRule | None = None
) -> pd.DataFrame:
    """Raw sales -> one row per shop (index ``shop_id`` sorted): ``eligible`` (bool), ``as_of`` ("YYYY-MM" of
    the latest active month), then the feature columns (float64). Every shop is listed; filter on ``eligible``."""
    rule = rule if rule is not None else EligibilityRule()
    out = features_from_monthly(monthly_panel(sales), feature_set, rule)
    log.info(
        "features.built",
        rows=len(sales),
        shops=len(out),
        eligible=int(out["eligible"].sum()),
        feature_set=get_feature_set(feature_set).name,
    )
    return out
