"""Plotly figures (plain ``{"data", "layout"}`` dicts) for the explorer pages; the browser draws them with the
vendored plotly.js (``static/``). Pure functions: what a chart shows is decided here, not in the templates.

Marks are predictable, which the browser test relies on: a bar chart draws one bar per (trace, x) value given
(zero sizes are left out), a line chart one line per trace, a Sankey one link per flow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
PALETTE = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e",
           "#9498a0", "#1f77b4", "#d62728", "#2ca02c", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
           "#393b79", "#637939"]
GREY = "#b8bcc4"
Figure = dict[str, Any]


def color_of(segment_id: str | None) -> str:
    """A segment's colour, the same on every page (by its number)."""
    if not segment_id or not segment_id.startswith("seg-") or not segment_id[4:].isdigit():
        return GREY
    return PALETTE[int(segment_id[4:]) % len(PALETTE)]


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    base = {"title": {"text": title, "font": {"size": 14}}, "autosize": True, "height": 320,
            "margin": {"l": 48, "r": 12, "t": 36, "b": 40}, "legend": {"orientation": "h", "y": -0.18},
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)"}
    return {**base, **extra}


def sizes_by_version(sizes: Mapping[int, Mapping[str, int]], versions: Sequence[int],
                     names: Mapping[str, str]) -> Figure:
    """Stacked bars: retailers per segment right after each applied version."""
    segments = sorted({s for v in versions for s, n in sizes.get(v, {}).items() if n > 0})
    data = []
    for segment in segments:
        points = [(f"v{v}", sizes[v][segment]) for v in versions if sizes.get(v, {}).get(segment, 0) > 0]
        data.append({"type": "bar", "name": f"{segment} {names.get(segment, '')}".strip(), "x": [p[0] for p in points],
                     "y": [p[1] for p in points], "marker": {"color": color_of(segment)}})
    return {"data": data, "layout": _layout("Segment sizes by model version", barmode="stack",
                                            xaxis={"type": "category"}, yaxis={"title": {"text": "retailers"}})}


def seasonality(curves: Sequence[tuple[str, str, Sequence[float]]], title: str = "12-month seasonality") -> Figure:
    """One line per ``(label, segment_id or "", curve)``: share of a year's volume per calendar month."""
    data = [{"type": "scatter", "mode": "lines+markers", "name": label, "x": MONTHS, "y": [round(v, 4) for v in curve],
             "line": {"color": color_of(segment) if segment else "#222", "dash": "solid" if segment else "dot"}}
            for label, segment, curve in curves]
    return {"data": data, "layout": _layout(title, yaxis={"title": {"text": "share of yearly volume"},
                                                          "tickformat": ".1%"})}


def feature_contrast(rows: Sequence[Mapping[str, Any]], segment_id: str) -> Figure:
    """Horizontal bars: each feature's segment mean against the population, in population standard deviations."""
    ordered = sorted(rows, key=lambda r: r["z"])
    data = [{"type": "bar", "orientation": "h", "name": "segment vs population", "y": [r["feature"] for r in ordered],
             "x": [round(r["z"], 3) for r in ordered], "marker": {"color": color_of(segment_id)}}]
    height = max(320, 22 * len(rows) + 80)
    return {"data": data, "layout": _layout("Profile: segment mean vs population (in population std)",
                                            height=height, margin={"l": 170, "r": 12, "t": 36, "b": 40},
                                            xaxis={"zeroline": True}, showlegend=False)}


def size_history(points: Sequence[tuple[int, int]], segment_id: str) -> Figure:
    """Bars: the segment's size after each applied version it had members in."""
    data = [{"type": "bar", "name": segment_id, "x": [f"v{v}" for v, _ in points], "y": [n for _, n in points],
             "marker": {"color": color_of(segment_id)}}]
    return {"data": data, "layout": _layout("Size by model version", xaxis={"type": "category"}, showlegend=False)}


def sankey(nodes: Sequence[Mapping[str, Any]], links: Sequence[Mapping[str, Any]], title: str) -> Figure:
    """Retailers flowing between two versions: ``nodes`` {label, name, color} (short labels, names on hover),
    ``links`` {source, target, value, color} (indices into ``nodes``)."""
    trace = {"type": "sankey", "arrangement": "snap", "valueformat": ",d",
             "node": {"label": [n["label"] for n in nodes], "color": [n["color"] for n in nodes], "pad": 12,
                      "thickness": 14, "customdata": [n.get("name", n["label"]) for n in nodes],
                      "hovertemplate": "%{customdata}<br>%{value:,d} retailers<extra></extra>"},
             "link": {k: [link[k] for link in links] for k in ("source", "target", "value", "color")}}
    return {"data": [trace], "layout": _layout(title, height=max(420, 26 * len(nodes)))}


def timeline(intervals: Sequence[Mapping[str, Any]]) -> Figure:
    """A Gantt-like bar per history interval: ``{label, segment, start (ISO), end (ISO), ms}``."""
    data = [{"type": "bar", "orientation": "h", "name": i["label"], "y": [i["label"]], "base": [i["start"]],
             "x": [i["ms"]], "marker": {"color": color_of(i["segment"])}, "showlegend": False,
             "hovertemplate": f"{i['label']}<br>{i['start']} → {i['end']}<extra></extra>"}
            for i in intervals]
    return {"data": data, "layout": _layout("Segment over time", barmode="overlay", xaxis={"type": "date"},
                                            yaxis={"type": "category", "automargin": True},
                                            height=max(220, 40 * len({i["label"] for i in intervals}) + 100))}


def model_metrics(rows: Sequence[Mapping[str, Any]], key: str, title: str, percent: bool = False) -> Figure:
    """Grouped bars per version, latent vs raw (a version without the figure for a space has no bar)."""
    data = []
    for space, color in (("latent", "#4269d0"), ("raw", "#efb118")):
        points = [(f"v{r['version']}", r[space][key]) for r in rows if r[space].get(key) is not None]
        if points:
            data.append({"type": "bar", "name": space, "x": [p[0] for p in points], "y": [p[1] for p in points],
                         "marker": {"color": color}})
    axis = {"tickformat": ".1%"} if percent else {}
    return {"data": data, "layout": _layout(title, barmode="group", xaxis={"type": "category"}, yaxis=axis)}
