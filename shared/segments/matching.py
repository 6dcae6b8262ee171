"""Match the clusters of a new model to the segments of the previous one, on retailer ids.

Two autoencoders' latent spaces are not comparable, so identity is decided by membership only:

1. Contingency table previous segment x new cluster over retailers present in both runs and non-noise in both
   (a retailer that is noise/unassigned on either side counts towards neither the segment's nor the cluster's
   size). Jaccard ``J = |S & C| / |S | C|`` and share ``|S & C| / |S|`` come from it.
2. A pair is *acceptable* when ``J >= min_jaccard`` (0.5, the dissolution line of the cluster-stability
   literature) and the segment sends more than half of its members there. One-to-one continuation is
   ``linear_sum_assignment(J masked to acceptable pairs, maximize=True)``. Masking matters: on raw Jaccard the
   optimum can trade one acceptable pair (0.5) for two unacceptable ones (1/3 + 1/3) and lose a continuation.
   Acceptable pairs are nearly a matching already (a segment has at most one cluster with > half of it), so
   the solver only settles exact ties, e.g. two halves of one cluster.
3. Determinism: segments are ordered by id number and clusters by their smallest member shop_id (clusters are
   disjoint, so this is a key of the member set), before the table is built. Any relabelling of the new
   clusters gives the same table, hence the same outcome; new ids go to clusters by (size desc, smallest
   member shop_id).
4. MONIC-style transitions (split, merge, birth, retirement) as documented on :class:`MatchResult`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from shared.config import SettingsParams
from shared.segments.lineage import MatchResult, SegmentIdState, parse_segment_id, segment_sort_key
from shared.segments.validation import validate_labels, validate_previous

NOISE = -1
_EPS = 1e-12  # comparisons of ratios such as 4/8 against 0.5 must not depend on rounding


@dataclass(frozen=True)
class MatchParams(SettingsParams, prefix="match_"):
    """Thresholds of matching (``min_jaccard``, ``stable_jaccard``, ``split_min_share``) and of per-retailer
    hysteresis (``weak_strength``, ``noise_grace``; see :mod:`shared.segments.assignment`). ``weak_strength=0``
    and ``noise_grace=False`` turn hysteresis off. ``online_moves``: whether online re-assignment may move a
    retailer between two segments (else only a retrain does)."""

    min_jaccard: float
    stable_jaccard: float
    split_min_share: float
    weak_strength: float
    noise_grace: bool
    online_moves: bool

    def __post_init__(self) -> None:
        for name in ("min_jaccard", "stable_jaccard", "split_min_share", "weak_strength"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"MatchParams.{name}: must be a number in [0, 1], got {value!r}")
        for flag in ("noise_grace", "online_moves"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"MatchParams.{flag}: must be a bool, got {getattr(self, flag)!r}")
        if self.min_jaccard <= 0.0:
            raise ValueError(f"MatchParams.min_jaccard: must be > 0, got {self.min_jaccard}")
        if self.stable_jaccard < self.min_jaccard:
            raise ValueError(f"MatchParams.stable_jaccard: must be >= min_jaccard ({self.min_jaccard}), "
                             f"got {self.stable_jaccard}")
        if not 0.0 < self.split_min_share <= 0.5:
            raise ValueError(f"MatchParams.split_min_share: must be in (0, 0.5], got {self.split_min_share}")


def match_clusters(previous: pd.Series | None, new_labels: pd.Series, state: SegmentIdState,
                   params: MatchParams | None = None) -> MatchResult:
    """Give every non-noise cluster of ``new_labels`` (shop_id -> int, -1 noise) a segment id, continuing the
    segments of ``previous`` (shop_id -> segment id, None/NaN when noise or unassigned) where membership
    says so. ``previous=None`` (or no segment in it) is the first model: every cluster is born."""
    params = params or MatchParams()
    if not isinstance(state, SegmentIdState):
        raise ValueError(f"state: must be a SegmentIdState, got {type(state).__name__}")
    prev = validate_previous(previous)
    labels = validate_labels(new_labels, "new_labels")
    segments = sorted(pd.unique(prev.dropna()).tolist(), key=segment_sort_key)
    if segments and parse_segment_id(segments[-1]) >= state.next_number:
        raise ValueError(f"state.next_number: is {state.next_number} but previous already uses {segments[-1]}; "
                         "ids would be reused")

    clusters, sizes = _canonical_clusters(labels)  # position in `clusters` is the canonical rank
    table = _contingency(prev, labels, segments, clusters)
    seg_size = table.sum(axis=1, keepdims=True)
    clu_size = table.sum(axis=0, keepdims=True)
    union = seg_size + clu_size - table
    jaccard = np.divide(table, union, out=np.zeros(table.shape), where=union > 0)
    share = np.divide(table, seg_size, out=np.zeros(table.shape), where=seg_size > 0)
    acceptable = (jaccard >= params.min_jaccard - _EPS) & (share > 0.5 + _EPS)

    pairs = _pairs(acceptable, jaccard)

    cluster_to_segment = {int(clusters[c]): segments[r] for r, c in pairs}
    fresh = sorted((c for c in range(len(clusters)) if int(clusters[c]) not in cluster_to_segment),
                   key=lambda c: (-sizes[c], c))
    new_ids, new_state = state.issue(len(fresh))
    cluster_to_segment.update({int(clusters[c]): sid for c, sid in zip(fresh, new_ids, strict=True)})
    seg_of = [cluster_to_segment[int(k)] for k in clusters]

    split, split_children = _splits(segments, share, seg_of, params.split_min_share)
    continued = [{"segment": segments[r], "cluster": int(clusters[c]), "jaccard": float(jaccard[r, c])}
                 for r, c in sorted(pairs)]
    kept = {entry["segment"] for entry in continued}
    return MatchResult(
        cluster_to_segment=dict(sorted(cluster_to_segment.items())),
        continued=continued,
        born=[sid for sid in new_ids if sid not in split_children],
        retired=[s for s in segments if s not in kept],
        split=split,
        merged=_merges(segments, share, seg_of),
        state=new_state,
        stable=[e["segment"] for e in continued if e["jaccard"] >= params.stable_jaccard - _EPS],
    )


def _pairs(acceptable: np.ndarray, jaccard: np.ndarray) -> list[tuple[int, int]]:
    """(segment row, cluster column) continuations: the assignment of most total Jaccard among acceptable pairs."""
    if not acceptable.any():
        return []
    rows, cols = linear_sum_assignment(np.where(acceptable, jaccard, 0.0), maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if acceptable[r, c]]


def _splits(segments: list[str], share: np.ndarray, seg_of: list[str], min_share: float
            ) -> tuple[list[dict[str, Any]], set[str]]:
    """Segments whose members went to two or more clusters (each >= ``min_share``), and the ids born that way."""
    split, children = [], set()
    for r, segment in enumerate(segments):
        parts = np.flatnonzero(share[r] >= min_share - _EPS).tolist()
        if len(parts) >= 2:
            parts.sort(key=lambda c, r=r: (-share[r, c], c))
            split.append({"from": segment, "into": [seg_of[c] for c in parts]})
            children.update(seg_of[c] for c in parts if seg_of[c] != segment)
    return split, children


def _merges(segments: list[str], share: np.ndarray, seg_of: list[str]) -> list[dict[str, Any]]:
    """Clusters that took the majority of two or more old segments, by the id they got."""
    merged = []
    for c in range(share.shape[1]):
        senders = [segments[r] for r in np.flatnonzero(share[:, c] > 0.5 + _EPS)]
        if len(senders) >= 2:
            merged.append({"from": senders, "into": seg_of[c]})
    return sorted(merged, key=lambda m: segment_sort_key(m["into"]))


def _canonical_clusters(labels: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Non-noise cluster labels ordered by their smallest member shop_id, and their sizes."""
    values = labels.to_numpy()
    mask = values != NOISE
    if not mask.any():
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    members = pd.Series(labels.index[mask])
    try:
        smallest = members.groupby(values[mask]).min()
        order = smallest.argsort().to_numpy()
    except TypeError:  # shop_ids of mixed types: compare their text
        smallest = members.astype(str).groupby(values[mask]).min()
        order = smallest.argsort().to_numpy()
    sizes = np.bincount(np.searchsorted(smallest.index.to_numpy(), values[mask]), minlength=len(smallest))
    return smallest.index.to_numpy(np.int64)[order], sizes[order]


def _contingency(prev: pd.Series, labels: pd.Series, segments: list[str], clusters: np.ndarray) -> np.ndarray:
    """Counts of retailers (present in both, non-noise in both) per (segment, cluster), in canonical order."""
    table = np.zeros((len(segments), len(clusters)), dtype=np.int64)
    if not segments or not len(clusters):
        return table
    seg_codes = pd.Index(segments, dtype=object).get_indexer(prev.to_numpy(dtype=object))
    if not prev.index.equals(labels.index):
        pos = prev.index.get_indexer(labels.index)
        seg_codes = np.where(pos >= 0, seg_codes[np.maximum(pos, 0)], -1)
    clu_codes = pd.Index(clusters).get_indexer(labels.to_numpy())
    both = (seg_codes >= 0) & (clu_codes >= 0)
    flat = seg_codes[both].astype(np.int64) * len(clusters) + clu_codes[both]
    return np.bincount(flat, minlength=table.size).reshape(table.shape)
