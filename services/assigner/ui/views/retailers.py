"""One retailer (``/ui/retailers/{shop_id}``) and the search box (``/ui/search``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import pandas as pd

from services.assigner.profiles import TRAIT_READERS
from services.assigner.ui import charts
from services.assigner.ui.views.common import PageNotFound, Sources
from shared.features import get_feature_set
from shared.segments import parse_segment_id
from shared.storage import AssignmentInfo
from shared.storage.models import utcnow

MAX_SHOP_ID = 64


def own_seasonality(row: dict[str, Any] | None, feature_set: str) -> list[float] | None:
    """The retailer's own 12-month curve from its feature vector, read as its segment's profile is."""
    reader = TRAIT_READERS.get(feature_set)
    if row is None or reader is None:
        return None
    columns = get_feature_set(feature_set).columns
    curve, _ = reader(pd.DataFrame([[row[c] for c in columns]], columns=columns))
    total = float(curve.sum())
    return [float(v) / total for v in curve] if total > 0 else None


def intervals(history: list[AssignmentInfo], now: datetime) -> list[dict[str, Any]]:
    out = []
    for row in history:
        end = row.valid_to or now
        out.append({"label": row.segment_id or row.status, "segment": row.segment_id,
                    "start": row.valid_from.isoformat(), "end": end.isoformat(),
                    "ms": max(int((end - row.valid_from).total_seconds() * 1000), 1)})
    return out


def events(history: list[AssignmentInfo]) -> list[dict[str, Any]]:
    """The history as change events (newest first): from, to, status, strength, version, reason, when."""
    out = []
    for i, row in enumerate(history):
        out.append({"from": history[i - 1].segment_id if i else None, "to": row.segment_id, "status": row.status,
                    "strength": row.strength, "version": row.model_version, "reason": row.reason,
                    "at": row.valid_from})
    return out[::-1]


def retailer(src: Sources, shop_id: str, serving: dict[str, Any]) -> dict[str, Any]:
    """Current segment, strength and status, the history timeline, own vs segment seasonality, change events."""
    if not shop_id or len(shop_id) > MAX_SHOP_ID:
        raise PageNotFound(f"retailer {shop_id[:MAX_SHOP_ID]!r} is unknown: a shop_id has 1-64 characters")
    state = src.store.get(shop_id)
    history = src.registry.assignments.history(shop_id)
    feature_set = str(serving["feature_set"])
    row = src.features.get(shop_id, feature_set)
    if state is None and not history and row is None:
        raise PageNotFound(f"retailer {shop_id!r} is unknown: no sales were seen and no segment was ever assigned")
    if state is None:
        state = {"segment": None, "name": None, "status": "unknown" if row and row["eligible"] else "ineligible",
                 "strength": 0.0, "model_version": serving["version"], "since": None, "reason": None}
    info = src.registry.segments.get_segment(state["segment"]) if state["segment"] else None
    curves = []
    own = own_seasonality(row, feature_set)
    if own is not None:
        curves.append((f"retailer {shop_id}", "", own))
    if info is not None:
        curves.append((f"{info.segment_id} {info.name}", info.segment_id, info.profile.get("seasonality") or []))
    figures = {"timeline": charts.timeline(intervals(history, utcnow()))} if history else {}
    if curves:
        figures["seasonality"] = charts.seasonality(curves, "Seasonality: the retailer against its segment")
    return {"shop_id": shop_id, "state": state, "segment": info, "features": row, "events": events(history),
            "charts": figures}


def search(src: Sources, query: str) -> str | dict[str, Any]:
    """A page to go to (a segment id, a known shop_id) or the matches: segments by id or name, shops by prefix."""
    q = query.strip()
    if not q:
        return "/ui"
    try:
        parse_segment_id(q)
        if src.registry.segments.get_segment(q) is not None:
            return f"/ui/segments/{q}"
    except ValueError:
        pass
    known = (src.store.get(q) is not None or src.registry.assignments.current_assignment(q) is not None
             or src.features.get(q) is not None) if len(q) <= MAX_SHOP_ID else False
    if known:
        return f"/ui/retailers/{quote(q, safe='')}"
    needle = q.lower()
    segments = [s for s in src.registry.segments.list_segments() if needle in s.segment_id or needle in s.name.lower()]
    shops = src.registry.explorer.shops_starting_with(q) if len(q) <= MAX_SHOP_ID else []
    return {"term": q, "segments": segments, "shops": shops}
