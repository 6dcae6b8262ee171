"""Eligibility and feature sets: one definition per feature set, computed in batch and per shop."""

from shared.features.base import FeatureSet
from shared.features.build import build_features, features_from_monthly, shop_as_of
from shared.features.eligibility import EligibilityRule
from shared.features.monthly import MONTHLY_COLUMNS, SALES_COLUMNS, ShopMonths, monthly_panel, monthly_table
from shared.features.panel import Panel
from shared.features.registry import DEFAULT_FEATURE_SET, FEATURE_SETS, get_feature_set, stored_feature_sets

__all__ = [
    "DEFAULT_FEATURE_SET",
    "FEATURE_SETS",
    "MONTHLY_COLUMNS",
    "SALES_COLUMNS",
    "EligibilityRule",
    "FeatureSet",
    "Panel",
    "ShopMonths",
    "build_features",
    "features_from_monthly",
    "get_feature_set",
    "monthly_panel",
    "monthly_table",
    "shop_as_of",
    "stored_feature_sets",
]
