"""The feature sets by name."""

from __future__ import annotations

from collections.abc import Sequence

from shared.features.base import FeatureSet
from shared.features.behaviour_v2 import BehaviourV2
from shared.features.behaviour_v3 import BehaviourV3
from shared.features.behaviour_v4 import BehaviourV4
from shared.features.seed_v1 import SeedV1

FEATURE_SETS: dict[str, FeatureSet] = {fs.name: fs for fs in (SeedV1(), BehaviourV2(), BehaviourV3(), BehaviourV4())}
DEFAULT_FEATURE_SET = "behaviour-v4"


def stored_feature_sets(names: Sequence[str], required: str) -> list[FeatureSet]:
    """The sets the feature store keeps (``names``; empty: every registered set), in name order.

    ``required`` (the set models train on) must be among them: a store without it would starve the trainer.
    """
    chosen = sorted(set(names)) if names else sorted(FEATURE_SETS)
    unknown = [name for name in chosen if name not in FEATURE_SETS]
    if unknown:
        raise ValueError(f"feature_store_sets: unknown feature set(s) {unknown}; known: {sorted(FEATURE_SETS)}")
    if required not in chosen:
        raise ValueError(f"feature_store_sets: must include feature_set {required!r} (the set models train on); "
                         f"got {chosen}")
    return [FEATURE_SETS[name] for name in chosen]


def get_feature_set(name: str | FeatureSet) -> FeatureSet:
    """The feature set called ``name`` (a FeatureSet instance is returned as is)."""
    if isinstance(name, FeatureSet):
        return name
    try:
        return FEATURE_SETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"feature_set: unknown feature set {name!r}; known: {sorted(FEATURE_SETS)}") from None
