"""Retailers flowing between segments from one applied version to the next (``/ui/lineage``, and the lineage part
of a segment's page).

A flow counts retailers by where they sat right after the previous version was applied and right after this one
(so online moves in between are part of it). Links are classed with the version's lineage: ``continued`` (same
segment), ``split`` / ``merged`` (named in the lineage), ``born`` (into a new segment), ``retired`` (out of a
retired one), ``moved`` (any other change of segment), ``new`` (retailers first seen), ``left`` (into noise or
ineligible).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from services.assigner.ui import charts
from services.assigner.ui.views.common import PageNotFound, Sources, flow_key, node_color, rgba, segment_label
from shared.storage import LineageInfo

Flow = tuple[str, str, int]  # (from node, to node, retailers)


def link_kind(source: str, target: str, payload: dict[str, Any]) -> str:
    if source == "new":
        return "new"
    if not target.startswith("seg-"):
        return "left"
    if source == target:
        return "continued"
    if any(source == e.get("from") and target in e.get("into", []) for e in payload.get("split", [])):
        return "split"
    if any(source in e.get("from", []) and target == e.get("into") for e in payload.get("merged", [])):
        return "merged"
    if target in payload.get("born", []):
        return "born"
    return "retired" if source in payload.get("retired", []) else "moved"


def version_flows(src: Sources, entry: LineageInfo, applied: list[LineageInfo]) -> list[Flow] | None:
    """The flows into ``entry``'s version from its previous one (None when they cannot be told, e.g. a version
    re-applied after a later one); from "new" only for the first version."""
    times = {e.model_version: e.created_at for e in applied}
    if entry.previous_version is None:
        rows = src.flows(entry.created_at, entry.created_at)
        return [("new", flow_key(s2, st2), n) for _, _, s2, st2, n in rows]
    before = times.get(entry.previous_version)
    if before is None or before >= entry.created_at:
        return None
    return merge(src.flows(before, entry.created_at))


def sankey_figure(flows: list[Flow], entry: LineageInfo, names: dict[str, str]) -> dict[str, Any]:
    """One node per (side, segment or status), one link per flow, coloured by its kind."""
    prev = f"v{entry.previous_version}" if entry.previous_version is not None else "before"
    nodes: list[dict[str, Any]] = []
    index: dict[tuple[str, str], int] = {}

    def node(side: str, key: str) -> int:
        if (side, key) not in index:
            index[(side, key)] = len(nodes)
            nodes.append({"label": f"{key} ({side})", "name": segment_label(key, names, 60), "color": node_color(key)})
        return index[(side, key)]

    links = []
    for source, target, n in flows:
        kind = link_kind(source, target, entry.payload)
        color = rgba(node_color(target if kind in ("new", "born") else source), 0.2 if kind == "continued" else 0.5)
        links.append({"source": node(prev, source), "target": node(f"v{entry.model_version}", target), "value": n,
                      "color": color, "kind": kind})
    title = f"Retailers from {prev} to v{entry.model_version}"
    return charts.sankey(nodes, links, title)


def lineage_page(src: Sources, version: int | None) -> dict[str, Any]:
    """The picked version's (default: the last applied) Sankey, flow table and lineage record."""
    applied = src.applied()
    if not applied:
        return {"versions": [], "entry": None, "flows": [], "charts": {}}
    entry = applied[-1] if version is None else next((e for e in applied if e.model_version == version), None)
    if entry is None:
        raise PageNotFound(f"model version {version} was never applied: no lineage to show")
    names = {s.segment_id: s.name for s in src.registry.segments.list_segments()}
    flows = version_flows(src, entry, applied)
    figures = {} if not flows else {"sankey": sankey_figure(flows, entry, names)}
    table = [{"from": a, "to": b, "retailers": n, "kind": link_kind(a, b, entry.payload)} for a, b, n in flows or []]
    table.sort(key=lambda r: -r["retailers"])
    return {"versions": [e.model_version for e in applied], "entry": entry, "payload": entry.payload,
            "flows": table, "flows_known": flows is not None, "names": names, "charts": figures}


def segment_lineage(src: Sources, segment_id: str) -> dict[str, Any]:
    """Where the segment's members came from and went, per applied version; a Sankey of the latest one. Reads
    only the segment's flows (``Explorer.segment_flows``), not every retailer's."""
    applied = src.applied()
    times = {e.model_version: e.created_at for e in applied}
    names = {s.segment_id: s.name for s in src.registry.segments.list_segments()}
    sizes = src.sizes()
    steps, sankey = [], None
    for entry in applied:
        before = times.get(entry.previous_version) if entry.previous_version is not None else None
        if entry.previous_version is None:
            size = sizes.get(entry.model_version, {}).get(segment_id, 0)
            touching = [("new", segment_id, size)] if size else []
        elif before is None or before >= entry.created_at:
            continue
        else:
            touching = merge(src.segment_flows(segment_id, before, entry.created_at))
        if not touching:
            continue
        came = sorted(((a, n) for a, b, n in touching if b == segment_id), key=lambda x: -x[1])
        went = sorted(((b, n) for a, b, n in touching if a == segment_id and b != segment_id), key=lambda x: -x[1])
        steps.append({"version": entry.model_version, "previous": entry.previous_version, "came": came,
                      "went": went, "events": events_of(entry.payload, segment_id)})
        sankey = sankey_figure(touching, entry, names)
    return {"steps": steps, "sankey": sankey}


def merge(rows: list[tuple[str | None, str, str | None, str, int]]) -> list[Flow]:
    """Flow rows by node (segment, or status when none), summed."""
    merged: dict[tuple[str, str], int] = defaultdict(int)
    for s1, st1, s2, st2, n in rows:
        merged[(flow_key(s1, st1), flow_key(s2, st2))] += n
    return [(a, b, n) for (a, b), n in sorted(merged.items())]


def events_of(payload: dict[str, Any], segment_id: str) -> list[str]:
    """What the version's lineage record says about the segment, in words."""
    continued = [c for c in payload.get("continued", []) if c.get("segment") == segment_id]
    out = [f"continued (Jaccard {c['jaccard']:.2f})" for c in continued]
    out += ["born"] if segment_id in payload.get("born", []) else []
    out += ["retired"] if segment_id in payload.get("retired", []) else []
    for e in payload.get("split", []):
        if segment_id == e.get("from") or segment_id in e.get("into", []):
            out.append(f"split: {e.get('from')} into {', '.join(e.get('into', []))}")
    for e in payload.get("merged", []):
        if segment_id == e.get("into") or segment_id in e.get("from", []):
            out.append(f"merged: {', '.join(e.get('from', []))} into {e.get('into')}")
    return out
