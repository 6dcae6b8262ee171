"""The feature sets by name."""

from __future__ import annotations

from shared.features.base import FeatureSet
from shared.features.behaviour_v2 import BehaviourV2
from shared.features.behaviour_v3 import BehaviourV3
from shared.features.seed_v1 import SeedV1

FEATURE_SETS: dict[str, FeatureSet] = {fs.name: fs for fs in (SeedV1(), BehaviourV2(), BehaviourV3())}
DEFAULT_FEATURE_SET = "behaviour-v3"


def get_feature_set(name: str | FeatureSet) -> FeatureSet:
    """The feature set called ``name`` (a FeatureSet instance is returned as is)."""
    if isinstance(name, FeatureSet):
        return name
    try:
        return FEATURE_SETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"feature_set: unknown feature set {name!r}; known: {sorted(FEATURE_SETS)}") from None
