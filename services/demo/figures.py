"""The demo's stability figures, computed against the generator's truth (pure functions, no I/O)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from shared.segments.flaps import flapping_retailers

Answers = Mapping[str, Mapping[str, Any]]  # shop_id -> /v1/retailers/{id}/segment answer
LABELLED = ("assigned", "noise")
SHARES = {  # name -> (part, whole): fields of Stability
    "kept_share": ("kept", "unchanged_assigned"),
    "drifted_event_share": ("drifted_with_events", "drifted"),
    "unchanged_event_share": ("unchanged_with_events", "unchanged"),
    "coverage": ("assigned_end", "eligible_end"),
    "flap_rate": ("flapped", "eligible_end"),
}


@dataclass(frozen=True)
class Stability:
    """Unchanged = truth has no ``archetype_after``; drifted = it has one. Both counted among retailers the first
    model labelled (assigned or noise)."""

    unchanged: int  # unchanged retailers labelled by the first model
    unchanged_assigned: int  # ... of which in a segment under the first model
    kept: int  # ... still in the same segment id at the end
    moved: int  # ... in another segment at the end
    to_noise: int  # ... noise (or no longer eligible) at the end
    unchanged_with_events: int  # unchanged retailers with at least one change event after the first model
    drifted: int  # drifted retailers labelled by the first model
    drifted_with_events: int  # ... with at least one change event after the first model
    drifted_moved: int  # ... whose segment (or noise status) differs at the end
    eligible_end: int = 0  # retailers eligible at the end (assigned, noise or not yet assigned)
    assigned_end: int = 0  # ... of which in a segment
    flapped: int = 0  # retailers that left a place and came back under one model version (shared.segments.flaps)

    def share(self, name: str) -> float:
        """One of ``SHARES``: its part over its whole (0 when the whole is 0)."""
        part, whole = (getattr(self, field) for field in SHARES[name])
        return part / whole if whole else 0.0

    def shares(self) -> dict[str, float]:
        """Every share of ``SHARES`` (kept, drifted with a change, unchanged with a change, coverage, flap rate)."""
        return {name: self.share(name) for name in SHARES}


def _where(answer: Mapping[str, Any] | None) -> str:
    """A retailer's place: its segment id, or its status when it has none."""
    if answer is None:
        return "missing"
    return str(answer.get("segment_id") or answer.get("status"))


def stability(truth: pd.DataFrame, before: Answers, after: Answers, changes_after: Iterable[Mapping[str, Any]],
              all_changes: Iterable[Mapping[str, Any]] = ()) -> Stability:
    """Compare the labels after the first model (``before``) with the final ones (``after``); ``changes_after``
    are the ``segments.changes`` events published after the first model settled, ``all_changes`` every one (in
    publication order per retailer) for the flap count."""
    drifted_ids = set(truth.loc[truth["archetype_after"].notna() & (truth["archetype_after"] != ""), "shop_id"])
    with_events = {str(event["shop_id"]) for event in changes_after}
    labelled = {shop for shop, answer in before.items() if answer.get("status") in LABELLED}
    unchanged = labelled - drifted_ids
    drifted = labelled & drifted_ids
    assigned = {shop for shop in unchanged if before[shop].get("status") == "assigned"}
    kept = {shop for shop in assigned if _where(after.get(shop)) == _where(before[shop])}
    moved = {shop for shop in assigned - kept if (after.get(shop) or {}).get("status") == "assigned"}
    return Stability(
        unchanged=len(unchanged), unchanged_assigned=len(assigned), kept=len(kept), moved=len(moved),
        to_noise=len(assigned) - len(kept) - len(moved), unchanged_with_events=len(unchanged & with_events),
        drifted=len(drifted), drifted_with_events=len(drifted & with_events),
        drifted_moved=sum(_where(after.get(shop)) != _where(before[shop]) for shop in drifted),
        eligible_end=sum(a.get("status") in (*LABELLED, "unknown") for a in after.values()),
        assigned_end=sum(a.get("status") == "assigned" for a in after.values()),
        flapped=len(flapping_retailers(all_changes)),
    )


def change_counts(events: Iterable[Mapping[str, Any]]) -> Counter[tuple[Any, str]]:
    """(model_version, reason) -> number of ``segments.changes`` events."""
    return Counter((event.get("model_version"), str(event.get("reason"))) for event in events)
