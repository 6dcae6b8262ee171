"""Flapping: a retailer whose segment changes and changes back without a retrain in between."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def flapping_retailers(changes: Iterable[Mapping[str, Any]]) -> set[str]:
    """Retailers with a ``segments.changes`` event that returns to the place (segment, or none) they left under
    the same ``model_version`` as the event that took them away. ``changes`` in publication order."""
    left: dict[str, dict[Any, set[Any]]] = {}  # shop -> model_version -> places left under it
    flapped: set[str] = set()
    for event in changes:
        shop, version = str(event["shop_id"]), event.get("model_version")
        places = left.setdefault(shop, {}).setdefault(version, set())
        if event.get("to_segment") in places:
            flapped.add(shop)
        places.add(event.get("from_segment"))
    return flapped


def flap_rate(changes: Iterable[Mapping[str, Any]], retailers: int) -> float:
    """Share of ``retailers`` that flapped (see :func:`flapping_retailers`)."""
    return len(flapping_retailers(changes)) / retailers if retailers else 0.0
