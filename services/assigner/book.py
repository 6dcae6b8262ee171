"""What the assigner knows between events: the book (retailer states, segments, id counter) and the serving map.

- :class:`Book`: every known retailer's current ``segment`` / ``status`` / ``strength``, the active segments,
  the segment-id counter and the version that produced them. The input of a relabel.
- :class:`Serving`: the serving model's cluster -> segment map and segment names, all the online path needs
  besides the bundle. It is stored in Redis and also recoverable from SQL: every active segment's profile
  records ``source: {model_version, cluster}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shared.segments import SegmentIdState
from shared.storage import SegmentInfo

STATUSES = ("assigned", "noise", "ineligible")


@dataclass(frozen=True)
class Serving:
    """The model version whose clusters map to segments now."""

    version: int
    feature_set: str
    cluster_to_segment: dict[int, str]
    names: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        clusters = {str(c): s for c, s in sorted(self.cluster_to_segment.items())}
        return {"version": self.version, "feature_set": self.feature_set, "clusters": clusters, "names": self.names}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Serving:
        return cls(int(data["version"]), str(data["feature_set"]),
                   {int(c): str(s) for c, s in data["clusters"].items()}, dict(data["names"]))

    @classmethod
    def from_segments(cls, version: int, feature_set: str, segments: Mapping[str, SegmentInfo]) -> Serving:
        """Rebuilt from the active segments' ``profile.source`` (those of ``version``)."""
        clusters = {}
        for sid, info in segments.items():
            source = info.profile.get("source") if isinstance(info.profile, dict) else None
            if isinstance(source, dict) and source.get("model_version") == version:
                clusters[int(source["cluster"])] = sid
        return cls(version, feature_set, clusters, {sid: segments[sid].name for sid in clusters.values()})


@dataclass(frozen=True)
class Book:
    """Retailer states (index shop_id; ``segment``, ``status``, ``strength``), active segments, id counter."""

    assignments: pd.DataFrame | None = None
    segments: Mapping[str, SegmentInfo] = field(default_factory=dict)
    state: SegmentIdState = field(default_factory=SegmentIdState)
    version: int | None = None


def empty_states() -> pd.DataFrame:
    index = pd.Index([], name="shop_id", dtype=object)
    text = {name: pd.Series([], index=index, dtype=object) for name in ("segment", "status", "since", "reason")}
    return pd.DataFrame({**text, "strength": pd.Series([], index=index, dtype=float)}, index=index)


def previous_frame(states: pd.DataFrame | None) -> pd.DataFrame:
    """Retailer states checked and normalised for :func:`shared.segments.assign_segments`: index shop_id, segment
    (None unless assigned), status, strength (0 unless assigned)."""
    if states is None or len(states) == 0:
        return empty_states()
    frame = states.set_index("shop_id") if "shop_id" in states.columns else states
    missing = [c for c in ("segment", "status", "strength") if c not in frame.columns]
    if missing:
        raise ValueError(f"states: missing column {missing[0]!r}")
    status = frame["status"].to_numpy(dtype=object)
    bad = ~np.isin(status, STATUSES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"states.status: shop_id {frame.index[i]!r} has {status[i]!r}, expected one of {STATUSES}")
    assigned = status == "assigned"
    segment = frame["segment"].to_numpy(dtype=object, copy=True)
    segment[~assigned] = None
    strength = np.where(assigned, pd.to_numeric(frame["strength"], errors="coerce").fillna(0.0).to_numpy(float), 0.0)
    index = shop_index(frame.index)
    return pd.DataFrame({"segment": pd.Series(segment, index=index, dtype=object),
                         "status": pd.Series(status, index=index, dtype=object),
                         "strength": np.clip(strength, 0.0, 1.0)}, index=index)


def shop_index(index: pd.Index) -> pd.Index:
    """shop ids as an object index of str named ``shop_id`` (one dtype everywhere, whatever pandas inferred)."""
    if index.dtype == object and index.name == "shop_id" and all(isinstance(s, str) for s in index):
        return index
    return pd.Index([str(s) for s in index.tolist()], name="shop_id", dtype=object)
