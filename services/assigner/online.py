"""Online assignment after ``features.updated``: the serving model applied to the retailers of one batch of events.

``decide`` (pure apart from reads) keeps the latest event per retailer, reads the features of the eligible ones
(one pipelined round trip) and their current states, and runs :func:`~services.assigner.relabel.assign_online`
(the relabel's per-retailer rules: new retailers get a segment as soon as they are eligible, weak switches and one
noisy update are held) plus :func:`~services.assigner.relabel.mark_ineligible`. Without ``online_moves`` a retailer
keeps its segment online when it is pulled elsewhere or turns ineligible (a partial year lowers the seed's
active-months-per-year mean every January): the next retrain decides. ``commit`` writes the states to
the live Redis generation and the moves to the SQL history. The service publishes the changes in between, so a
crash repeats events rather than losing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from services.assigner.book import Serving
from services.assigner.ledger import history_rows, record_history
from services.assigner.relabel import assign_online, change_events, mark_ineligible
from services.assigner.store import AssignmentStore
from shared.feature_store import FeatureStore
from shared.logging import get_logger
from shared.model.bundle import ModelBundle
from shared.segments import MatchParams
from shared.storage import Registry
from shared.storage.models import utcnow

log = get_logger("stableseg.assigner.online")


@dataclass
class Decision:
    """What one batch decided: the states to write, the history rows, the change events."""

    states: pd.DataFrame
    history: list[list[Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    at: Any = None

    @property
    def retailers(self) -> int:
        return len(self.states)


@dataclass(eq=False)
class OnlineAssigner:
    """The serving model's online path (one instance per serving model)."""

    bundle: ModelBundle
    serving: Serving
    params: MatchParams
    store: AssignmentStore
    features: FeatureStore
    registry: Registry

    def decide(self, events: list[dict[str, Any]]) -> Decision:
        latest: dict[str, dict[str, Any]] = {}
        for event in events:
            shop = event.get("shop_id")
            if shop in (None, "") or event.get("feature_set") != self.serving.feature_set:
                continue
            latest[str(shop)] = event
        rows, ineligible = self.read_features([s for s, e in latest.items() if e.get("eligible") is True])
        ineligible += [s for s, e in latest.items() if e.get("eligible") is not True]
        previous = self.store.states(latest)
        parts = []
        if len(rows):
            parts.append(assign_online(previous.loc[previous.index.intersection(rows.index)], rows, self.bundle,
                                       self.serving, self.params))
        gone = pd.Index(ineligible)
        if not self.params.online_moves:  # a retailer's segment is only taken away by a retrain (see assign_online)
            gone = gone.difference(previous.index[previous["segment"].notna().to_numpy()])
        if len(gone):
            parts.append(mark_ineligible(previous, gone, "features"))
        at = utcnow()
        if not parts:
            return Decision(pd.DataFrame(), at=at)
        decided = pd.concat(parts)
        states = _states(decided, previous, self.serving.version, at)
        return Decision(states, history_rows(decided, "features"), change_events(decided, self.serving.version), at)

    def read_features(self, shops: list[str]) -> tuple[pd.DataFrame, list[str]]:
        """Feature rows of the shops that the store holds as eligible (one pipeline), and the others."""
        columns = self.bundle.columns
        if not shops:
            return pd.DataFrame(columns=columns, dtype=float), []
        frame, missing = self.features.rows(shops, self.serving.feature_set)
        return frame[list(columns)], missing

    def commit(self, decision: Decision) -> None:
        if decision.retailers:
            self.store.write_live(decision.states)
        if decision.history:
            record_history(self.registry, decision.history, self.serving.version, decision.at)


def _states(decided: pd.DataFrame, previous: pd.DataFrame, version: int, at: Any) -> pd.DataFrame:
    moved = decided["moved"].to_numpy(dtype=bool)
    old_since = previous["since"].reindex(decided.index).to_numpy(dtype=object) if len(previous) else None
    since = np.full(len(decided), at.isoformat(), dtype=object)
    if old_since is not None:
        keep = ~moved & pd.notna(old_since)
        since[keep] = old_since[keep]
    old_reason = previous["reason"].reindex(decided.index).to_numpy(dtype=object) if len(previous) else None
    reason = np.where(moved, decided["reason"].to_numpy(dtype=object), None if old_reason is None else old_reason)
    return pd.DataFrame({
        "segment": decided["segment"], "name": decided["name"], "status": decided["status"],
        "strength": decided["strength"].astype(float).round(6), "model_version": version, "since": since,
        "reason": reason,
    }, index=decided.index)
