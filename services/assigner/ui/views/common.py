"""What every explorer view shares: the stores it reads, its two page errors, trust, population, flow labels."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from services.assigner.store import AssignmentStore
from services.assigner.ui.charts import GREY, color_of
from shared.feature_store import FeatureStore
from shared.storage import LineageInfo, Registry, SegmentInfo

STATUS_COLORS = {"new": "#3ca951", "noise": "#ff725c", "ineligible": "#9c6b4e", "unknown": GREY}
TRUST_LEVELS = ("stable", "weak", "unstable")


class PageNotFound(LookupError):
    """The page names a retailer, segment or version that does not exist (a 404 page)."""


class PageUnavailable(RuntimeError):
    """The page cannot be drawn yet, e.g. before the first model is applied (a 503 page)."""


@dataclass
class Sources:
    """The assigner's own stores (sync clients: views run in a worker thread). ``flows`` and ``sizes`` are
    memoised: the history valid at a past moment never changes (see ``shared.storage.explore``), so they change
    only when another version is applied."""

    registry: Registry
    store: AssignmentStore
    features: FeatureStore
    _flows: Any = field(default=None, repr=False)
    _segment_flows: Any = field(default=None, repr=False)
    _sizes: tuple[Any, dict[int, dict[str, int]]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._flows = lru_cache(maxsize=64)(self.registry.explorer.flows)
        self._segment_flows = lru_cache(maxsize=256)(self.registry.explorer.segment_flows)

    def flows(self, before: datetime, after: datetime) -> list[tuple[str | None, str, str | None, str, int]]:
        return self._flows(before, after)

    def segment_flows(self, segment_id: str, before: datetime, after: datetime) -> list[tuple[Any, ...]]:
        return self._segment_flows(segment_id, before, after)

    def sizes(self) -> dict[int, dict[str, int]]:
        """``Explorer.sizes_by_version``, recomputed when the applied versions (or their moments) change."""
        key = tuple((e.model_version, e.created_at) for e in self.applied())
        if self._sizes is None or self._sizes[0] != key:
            self._sizes = (key, self.registry.explorer.sizes_by_version())
        return self._sizes[1]

    def applied(self) -> list[LineageInfo]:
        return self.registry.segments.list_lineage()


def trust_of(info: SegmentInfo) -> tuple[float | None, str | None]:
    """``(trust, trust_level)`` when the segment data carries them (as fields or in the profile), else Nones."""
    profile = info.profile if isinstance(info.profile, dict) else {}
    trust = getattr(info, "trust", None)
    trust = profile.get("trust") if trust is None else trust
    level = getattr(info, "trust_level", None) or profile.get("trust_level")
    if not isinstance(trust, int | float) or isinstance(trust, bool) or not math.isfinite(trust):
        trust = None
    return (None if trust is None else float(trust)), (level if level in TRUST_LEVELS else None)


def population(segments: Iterable[SegmentInfo]) -> tuple[dict[str, tuple[float, float]], list[float]]:
    """Every feature's mean and std over the members of ``segments`` (pooled from each segment's summary,
    weighted by size), and their size-weighted seasonality curve."""
    members = [s for s in segments if s.size > 0 and isinstance(s.profile.get("features"), dict)]
    total = sum(s.size for s in members)
    if total == 0:
        return {}, []
    stats: dict[str, tuple[float, float]] = {}
    for feature in members[0].profile["features"]:
        parts = [(s.size, s.profile["features"][feature]) for s in members if feature in s.profile["features"]]
        n = sum(size for size, _ in parts)
        mean = sum(size * p["mean"] for size, p in parts) / n
        var = sum(size * (p["std"] ** 2 + (p["mean"] - mean) ** 2) for size, p in parts) / n
        stats[feature] = (mean, math.sqrt(var))
    curves = [(s.size, s.profile.get("seasonality") or []) for s in members]
    curve = [sum(n * c[m] for n, c in curves if len(c) == 12) / total for m in range(12)]
    return stats, curve


def flow_key(segment: str | None, status: str) -> str:
    """The node a retailer sits in: its segment, or its status when it has none (new, noise, ineligible)."""
    return segment if segment else status


def node_color(key: str) -> str:
    return color_of(key) if key.startswith("seg-") else STATUS_COLORS.get(key, GREY)


def rgba(hex_color: str, alpha: float) -> str:
    value = hex_color.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def segment_label(key: str, names: Mapping[str, str], width: int = 38) -> str:
    label = f"{key} {names.get(key, '')}".strip() if key.startswith("seg-") else key
    return label if len(label) <= width else label[: width - 1] + "…"
