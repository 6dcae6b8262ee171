"""Durable effects of a relabel: Redis generation + write-ahead record, then SQL, in an order that survives crashes.

``next_states`` turns a :class:`~services.assigner.relabel.RelabelOutcome` into the next Redis generation (every
retailer's state, ``since`` carried over unless its segment or status moved), staged with its write-ahead record
(:class:`~services.assigner.pending.PendingRelabel`): the SQL work (segments, retirements, id counter, lineage,
history rows) and the events. ``persist_sql`` applies the SQL part; it is idempotent (same segments and counter,
history rows equal to the current ones are skipped), so a restart that finds a pending record
(``AssignmentStore.pending``) simply runs it again, publishes the events (at-least-once) and switches. Nothing is
recomputed on resume, so a retry can never hand out different ids.

``load_book`` reads what a relabel starts from: retailer states (Redis; rebuilt from SQL when Redis lost them),
active segments and the id counter (SQL), the serving version.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from services.assigner.book import Book, Serving, empty_states
from services.assigner.relabel import RelabelOutcome
from services.assigner.store import AssignmentStore
from shared.logging import get_logger
from shared.segments import SegmentIdState
from shared.storage import AssignmentChange, Registry

if TYPE_CHECKING:
    from services.assigner.pending import PendingRelabel

log = get_logger("stableseg.assigner.ledger")
HISTORY_STATUS = {"assigned": "assigned", "noise": "noise", "ineligible": "ineligible"}


def load_book(registry: Registry, store: AssignmentStore) -> Book:
    """The state a relabel continues from."""
    serving = store.serving()
    states = store.states()
    segments = {s.segment_id: s for s in registry.segments.list_segments(status="active")}
    state = SegmentIdState(registry.segments.get_next_segment_number())
    columns = ["segment", "status", "strength", "since", "reason"]
    version = None if serving is None else int(serving["version"])
    return Book(states[columns] if len(states) else empty_states(), segments, state, version)


def next_states(outcome: RelabelOutcome, previous: pd.DataFrame | None, at: datetime) -> pd.DataFrame:
    """Every retailer's Redis state after ``outcome`` (``since`` kept unless segment or status moved)."""
    frame = outcome.assignments
    stamp = at.isoformat()
    moved = frame["moved"].to_numpy(dtype=bool)
    since = pd.Series(stamp, index=frame.index, dtype=object)
    reason = frame["reason"].where(frame["moved"], None).astype(object)
    if previous is not None and "since" in previous.columns and len(previous):
        old = previous[["since", "reason"]].reindex(frame.index)
        keep = ~moved & old["since"].notna().to_numpy()
        since[keep] = old["since"][keep]
        reason[~moved] = old["reason"][~moved]
    return pd.DataFrame({
        "segment": frame["segment"], "name": frame["name"], "status": frame["status"],
        "strength": frame["strength"].round(6), "model_version": outcome.version, "since": since,
        "reason": reason,
    }, index=frame.index)


def history_rows(frame: pd.DataFrame, default_reason: str) -> list[list[Any]]:
    """``[shop_id, segment, status, strength, reason]`` for each retailer whose segment or status moved."""
    moved = frame[frame["moved"].to_numpy(dtype=bool)]
    reasons = moved["reason"].where(moved["reason"].notna(), default_reason).tolist()
    strengths = [round(value, 6) for value in moved["strength"].to_numpy(dtype=float).tolist()]
    return [list(row) for row in zip([str(shop) for shop in moved.index], moved["segment"].tolist(),
                                     moved["status"].tolist(), strengths, reasons, strict=True)]


def serving_record(outcome: RelabelOutcome, model: dict[str, Any]) -> dict[str, Any]:
    return {**outcome.serving.to_json(), "sha256": model.get("sha256"), "artifact_uri": model.get("artifact_uri")}


def persist_sql(registry: Registry, pending: PendingRelabel) -> None:
    """Segments + retirements + id counter + lineage (one transaction), then the history rows (another)."""
    registry.segments.upsert_segments(pending.segment_infos(), next_number=pending.next_number, retire=pending.retired,
                                      lineage=pending.lineage)
    record_history(registry, pending.history, pending.version, pending.time)


def record_history(registry: Registry, rows: list[list[Any]], version: int, at: datetime) -> int:
    changes = [AssignmentChange(shop, seg, HISTORY_STATUS[status], strength, reason)
               for shop, seg, status, strength, reason in rows]
    return registry.assignments.record_assignments(changes, version, at=at) if changes else 0


def rebuild_from_sql(registry: Registry, store: AssignmentStore) -> int | None:
    """Recreate the Redis generation from SQL (current history rows + active segments) when Redis lost it;
    returns the serving version, None when SQL holds no relabel either."""
    segments = {s.segment_id: s for s in registry.segments.list_segments(status="active")}
    versions = {s.profile.get("source", {}).get("model_version") for s in segments.values()} - {None}
    if len(versions) != 1:
        return None
    version = int(versions.pop())
    info = registry.versions.get(version)
    serving = Serving.from_segments(version, info.feature_set, segments)
    current = registry.assignments.current_assignments()
    index = pd.Index(list(current), name="shop_id", dtype=object)
    rows = list(current.values())
    states = pd.DataFrame({
        "segment": pd.Series([r.segment_id for r in rows], index=index, dtype=object),
        "name": pd.Series([segments[r.segment_id].name if r.segment_id in segments else None for r in rows],
                          index=index, dtype=object),
        "status": pd.Series([r.status if r.status in HISTORY_STATUS else "ineligible" for r in rows], index=index,
                            dtype=object),
        "strength": np.array([r.strength or 0.0 for r in rows], dtype=float),
        "model_version": version,
        "since": pd.Series([r.valid_from.isoformat() for r in rows], index=index, dtype=object),
        "reason": pd.Series([r.reason for r in rows], index=index, dtype=object),
    }, index=index)
    gen = store.stage(states, {**serving.to_json(), "sha256": info.sha256, "artifact_uri": info.artifact_uri},
                      {"rebuild": True})
    store.switch(gen)
    log.warning("assigner.redis_rebuilt", version=version, retailers=len(states))
    return version
