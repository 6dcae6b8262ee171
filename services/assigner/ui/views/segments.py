"""The overview (``/ui``) and one segment (``/ui/segments/{id}``)."""

from __future__ import annotations

from typing import Any

from services.assigner.ui import charts
from services.assigner.ui.views.common import PageNotFound, Sources, population, trust_of
from services.assigner.ui.views.lineage import segment_lineage
from shared.segments import parse_segment_id
from shared.storage import SegmentInfo

TRAITS = ("growth", "volatility", "assortment", "activity")


def segment_row(info: SegmentInfo, total: int) -> dict[str, Any]:
    trust, level = trust_of(info)
    traits = info.profile.get("traits") or {}
    return {"id": info.segment_id, "name": info.name, "size": info.size, "status": info.status,
            "share": info.size / total if total else 0.0, "trust": trust, "trust_level": level,
            "traits": {t: traits.get(t) for t in TRAITS}, "first_version": info.first_version,
            "last_version": info.last_version, "parent": info.parent_segment}


def overview(src: Sources, serving: dict[str, Any]) -> dict[str, Any]:
    """Every active segment, sizes across versions, all seasonality curves on one chart."""
    active = src.registry.segments.list_segments("active")
    names = {s.segment_id: s.name for s in src.registry.segments.list_segments()}
    versions = [entry.model_version for entry in src.applied()]
    total = sum(s.size for s in active)
    curves = [(f"{s.segment_id} {s.name}", s.segment_id, s.profile.get("seasonality") or [0.0] * 12) for s in active]
    return {
        "serving": serving, "segments": [segment_row(s, total) for s in active], "assigned": total,
        "charts": {"sizes": charts.sizes_by_version(src.sizes(), versions, names),
                   "seasonality": charts.seasonality(curves, "12-month seasonality of every active segment")},
    }


def feature_rows(info: SegmentInfo, stats: dict[str, tuple[float, float]]) -> list[dict[str, Any]]:
    """The segment's feature summary beside the population's, with the gap in population std units."""
    rows = []
    for feature, summary in (info.profile.get("features") or {}).items():
        pop_mean, pop_std = stats.get(feature, (summary["mean"], 0.0))
        z = (summary["mean"] - pop_mean) / pop_std if pop_std > 0 else 0.0
        rows.append({"feature": feature, **summary, "pop_mean": pop_mean, "pop_std": pop_std, "z": z})
    return rows


def segment(src: Sources, segment_id: str) -> dict[str, Any]:
    """Profile against the population, seasonality, size history, lineage, a sample of members."""
    try:
        parse_segment_id(segment_id)
    except ValueError as exc:
        raise PageNotFound(f"segment {segment_id!r} does not exist ({exc})") from None
    info = src.registry.segments.get_segment(segment_id)
    if info is None:
        raise PageNotFound(f"segment {segment_id!r} does not exist")
    active = src.registry.segments.list_segments("active")
    stats, pop_curve = population(active)
    rows = feature_rows(info, stats)
    sizes = src.sizes()
    history = [(e.model_version, sizes[e.model_version][segment_id]) for e in src.applied()
               if sizes.get(e.model_version, {}).get(segment_id)]
    curves = [(f"{segment_id} {info.name}", segment_id, info.profile.get("seasonality") or [0.0] * 12)]
    if pop_curve:
        curves.append(("all active segments", "", pop_curve))
    lineage = segment_lineage(src, segment_id)
    figures = {"profile": charts.feature_contrast(rows, segment_id), "sizes": charts.size_history(history, segment_id),
               "seasonality": charts.seasonality(curves)}
    if lineage["sankey"] is not None:
        figures["lineage"] = lineage["sankey"]
    return {"segment": segment_row(info, sum(s.size for s in active)), "features": rows, "lineage": lineage,
            "members": members(src, segment_id), "charts": figures}


def members(src: Sources, segment_id: str, limit: int = 25) -> list[dict[str, Any]]:
    """The members held most strongly, with their live state from the assignments store."""
    rows = src.registry.explorer.segment_members(segment_id, limit)
    live = src.store.states([shop for shop, _, _ in rows])
    out = []
    for shop, strength, since in rows:
        state = live.loc[shop] if shop in live.index else None
        out.append({"shop_id": shop, "since": since, "status": None if state is None else state["status"],
                    "strength": strength if state is None else float(state["strength"])})
    return out
