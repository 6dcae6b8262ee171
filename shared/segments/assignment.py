"""Per-retailer outcome of a retrain: which segment each retailer holds now, and whether that is a change.

After :func:`~shared.segments.matching.match_clusters` the new cluster of a retailer maps to a segment id. A
retailer *changes* only when that mapped id differs from the segment it held. Two hysteresis rules keep a
retailer where it was when the new model is not sure about it, so that sales teams see a segment move only
when behaviour really moved (``weak_strength`` is :attr:`MatchParams.weak_strength`, default 0.05):

1. **Weak switch is held.** The new cluster maps to a different segment, but the retailer's membership
   strength there is below ``weak_strength`` and its previous segment continued: it keeps its previous
   segment (``held``). A weak member sits on a cluster border; a reseeded retrain of the same data moves such
   borders, while a retailer whose behaviour drifted lands firmly inside its new cluster and does change.
   Holding repeats as long as the retailer stays weakly placed elsewhere (it never leaves a live segment on
   a weak signal); it moves as soon as the new cluster holds it with at least ``weak_strength``. Its reported
   strength stays the (weak) one from the new model, so the flag is visible downstream.
2. **One noisy retrain does not drop a stable retailer.** A retailer the new model calls noise keeps its
   previous segment for that retrain (``held``, status "assigned", strength 0) when it held that segment with
   strength >= ``weak_strength`` and the segment continued. Noise flips of border retailers are frequent
   between reseeded retrains; dropping the segment each time would make accounts flicker in and out. The
   kept strength is 0, so a second consecutive noisy retrain finds no membership to hold on to and reports the
   retailer as noise (status "noise", segment None, ``changed``): grace lasts one retrain in a row, whatever
   ``weak_strength`` is. Weak members and members of retired segments are reported as noise at once, and so
   is a retailer whose noise sits nearest another segment's cluster (it is moving away; ``nearest``).
   ``noise_grace=False`` reports every fall into noise at once.

No other smoothing: a retailer whose segment retired always gets its new cluster's segment (or noise), and a
previously noisy or new retailer takes whatever the new model says. Retailers only in the previous assignment
(no longer eligible) are not part of the result; the caller reports them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared.segments.lineage import MatchResult, parse_segment_id
from shared.segments.matching import NOISE, MatchParams
from shared.segments.validation import shop, validate_labels, validate_strengths

OUTPUT_COLUMNS = ("shop_id", "segment", "status", "strength", "changed", "from_segment", "reason", "held")
PREVIOUS_STATUSES = ("assigned", "noise", "ineligible", "unknown")
REASONS = ("retrain", "features")


def assign_segments(previous_assignment: pd.DataFrame | None, new_labels: pd.Series, new_strengths: pd.Series,
                    result: MatchResult, params: MatchParams | None = None, *, reason: str = "retrain",
                    hold_switches: bool = False, nearest: pd.Series | None = None) -> pd.DataFrame:
    """One row per retailer of ``new_labels``: ``shop_id, segment`` (None when noise), ``status`` ("assigned" |
    "noise"), ``strength`` (membership in the new model, 0 for noise), ``changed``, ``from_segment`` (previous
    segment or None), ``reason`` (``reason`` for a changed known retailer, "new-retailer" for a retailer absent
    from ``previous_assignment``, None when unchanged) and ``held`` (kept by a hysteresis rule).

    ``previous_assignment`` has ``shop_id`` as index or column, and columns ``segment``, ``status``,
    ``strength`` (None for the first model). ``hold_switches`` holds every switch between two live segments, not
    only the weak ones, every fall from a live segment into noise, however weak the member, and a weak join (a
    retailer without a segment whose strength is below ``weak_strength`` stays without one): the online path
    without ``online_moves``, where only a retrain takes a segment away (a weak join would flap back). ``nearest`` (per
    retailer of ``new_labels``, the cluster of its nearest clustered neighbour in the new model) narrows the noise
    grace to retailers whose noise still sits by their previous segment: one whose nearest cluster is another
    segment's moved away (a drifting retailer between two segments) and is reported as noise at once."""
    params = params or MatchParams()
    if reason not in REASONS:
        raise ValueError(f"reason: must be one of {REASONS}, got {reason!r}")
    labels = validate_labels(new_labels, "new_labels")
    strengths = validate_strengths(new_strengths, labels, "new_strengths").to_numpy()
    prev = _validate_previous_assignment(previous_assignment)

    label_values = labels.to_numpy()
    noise = label_values == NOISE
    # segments as integer codes into `names`; code -1 (None) is "no segment", names[-1] is that None
    names = sorted(set(result.cluster_to_segment.values()) | set(pd.unique(prev["segment"].dropna())))
    lookup = pd.Index(names, dtype=object)
    names_or_none = np.array([*names, None], dtype=object)
    mapped = _cluster_codes(label_values, noise, result.cluster_to_segment, lookup)

    pos = np.arange(len(labels)) if prev.index.equals(labels.index) else prev.index.get_indexer(labels.index)
    known = pos >= 0
    prev_code = _take(lookup.get_indexer(prev["segment"].to_numpy(dtype=object)), pos, -1)
    prev_str = _take(np.nan_to_num(prev["strength"].to_numpy(dtype=float), nan=0.0), pos, 0.0)
    continued = np.zeros(len(names) + 1, dtype=bool)
    continued[lookup.get_indexer(list(result.continued_segments))] = True
    alive = continued[prev_code]  # index -1 hits the trailing False

    weak_switch = ~noise & alive & (mapped != prev_code) & ((strengths < params.weak_strength) | hold_switches)
    graced = (prev_str > 0) & (prev_str >= params.weak_strength) & params.noise_grace
    if nearest is not None:
        graced &= _near_codes(nearest, labels.index, result.cluster_to_segment, lookup) == prev_code
    noise_grace = noise & alive & (graced | hold_switches)
    weak_join = ~noise & (prev_code < 0) & (strengths < params.weak_strength) & hold_switches
    held = weak_switch | noise_grace | weak_join
    code = np.where(held, prev_code, mapped)
    assigned = code >= 0
    changed = code != prev_code
    segment, prev_seg = names_or_none[code], names_or_none[prev_code]
    why = np.where(changed, np.where(known, reason, "new-retailer"), None).astype(object)
    text = {"segment": segment, "status": np.where(assigned, "assigned", "noise"), "from_segment": prev_seg,
            "reason": why}  # object columns keep None (not NaN) for JSON
    return pd.DataFrame({
        "shop_id": labels.index.to_numpy(),
        **{name: pd.Series(values, dtype=object) for name, values in text.items()},
        "strength": np.where(noise, 0.0, strengths),
        "changed": changed,
        "held": held,
    })[list(OUTPUT_COLUMNS)]


def _near_codes(nearest: pd.Series, index: pd.Index, cluster_to_segment: dict[int, str],
                lookup: pd.Index) -> np.ndarray:
    """Segment code of each retailer's nearest cluster (-1: none, or a cluster without a segment)."""
    near = nearest.reindex(index).fillna(NOISE).to_numpy(dtype=np.int64)
    near = np.where(np.isin(near, list(cluster_to_segment)), near, NOISE)
    return _cluster_codes(near, near == NOISE, cluster_to_segment, lookup)


def _cluster_codes(labels: np.ndarray, noise: np.ndarray, cluster_to_segment: dict[int, str],
                   lookup: pd.Index) -> np.ndarray:
    """Code (position in ``lookup``) of each label's segment; -1 for noise."""
    clusters = np.array(sorted(cluster_to_segment), dtype=np.int64)
    codes = lookup.get_indexer([cluster_to_segment[c] for c in clusters.tolist()])
    at = np.searchsorted(clusters, labels)
    found = at < len(clusters)
    found[found] = clusters[at[found]] == labels[found]
    unknown = ~noise & ~found
    if unknown.any():
        raise ValueError(f"new_labels: cluster {labels[np.flatnonzero(unknown)[0]]} has no segment in the match result")
    return _take(codes, np.where(noise, -1, at), -1)


def _take(values: np.ndarray, positions: np.ndarray, fill: float) -> np.ndarray:
    """``values[positions]`` with ``fill`` where the position is -1."""
    if not len(values):
        return np.full(len(positions), fill, dtype=values.dtype)
    return np.where(positions >= 0, values[np.maximum(positions, 0)], fill)


def _validate_previous_assignment(previous: pd.DataFrame | None) -> pd.DataFrame:
    """shop_id-indexed frame with ``segment`` (str or None), ``status`` and ``strength`` checked for consistency."""
    if previous is None:
        return pd.DataFrame({"segment": pd.Series([], dtype=object), "status": pd.Series([], dtype=object),
                             "strength": pd.Series([], dtype=float)})
    if not isinstance(previous, pd.DataFrame):
        raise ValueError(f"previous_assignment: must be a DataFrame, got {type(previous).__name__}")
    frame = previous.set_index("shop_id") if "shop_id" in previous.columns else previous
    missing = [c for c in ("segment", "status", "strength") if c not in frame.columns]
    if missing:
        raise ValueError(f"previous_assignment: missing column {missing[0]!r}")
    if frame.index.has_duplicates:
        raise ValueError(f"previous_assignment: shop_id {shop(frame.index[frame.index.duplicated()][0])!r} "
                         "appears more than once")
    segment = frame["segment"].to_numpy(dtype=object, copy=True)
    has_seg = ~pd.isna(segment)
    segment[~has_seg] = None
    for value in pd.unique(segment[has_seg]).tolist():
        try:
            parse_segment_id(value)
        except ValueError as exc:
            raise ValueError(f"previous_assignment.segment: {exc}") from None
    status = frame["status"].to_numpy(dtype=object)
    strength = pd.to_numeric(frame["strength"], errors="coerce").to_numpy(dtype=float)
    bad_status = ~pd.Series(status, dtype=object).isin(PREVIOUS_STATUSES).to_numpy()
    checks = (
        (bad_status, "status", f"must be one of {PREVIOUS_STATUSES}"),
        (has_seg != (status == "assigned"), "segment", "must be set exactly when status is 'assigned'"),
        (has_seg & ~((strength >= 0) & (strength <= 1)), "strength", "must be a number in [0, 1] when assigned"),
    )
    for bad, field, problem in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            got = f"segment={segment[i]!r}, status={status[i]!r}, strength={shop(frame['strength'].iloc[i])!r}"
            raise ValueError(f"previous_assignment.{field}: shop_id {shop(frame.index[i])!r} {problem} ({got})")
    return pd.DataFrame({"segment": segment, "status": status, "strength": strength}, index=frame.index)
