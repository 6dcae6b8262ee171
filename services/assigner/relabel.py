"""THE relabel: a model version applied to every retailer, with segment identity carried over. Pure, no I/O.

:func:`relabel` is what the service runs on ``models.published`` and on a promotion, and what
``bench/bench_stability.py`` measures: predict every eligible retailer's cluster and strength, match the clusters to
the segments the retailers held (:func:`shared.segments.match_clusters`), decide per retailer
(:func:`shared.segments.assign_segments`, with its hysteresis for weak members and one-off noise), retire
segments no cluster continues, profile and name the segments (names kept while a segment continues) and build
the ``segments.changes`` and ``segments.lineage`` payloads.

Retailers the book knows but the features no longer list (no longer eligible) become ``ineligible``: a change
event when they held a segment. :func:`assign_online` is the same per-retailer decision for a few retailers with
the serving model (``features.updated``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from services.assigner.book import Book, Serving, previous_frame, shop_index
from services.assigner.predict import predict, predict_with_nearest
from services.assigner.profiles import naming_input, segment_profile
from shared.model.bundle import ModelBundle
from shared.model.selection import trust_level
from shared.segments import MatchParams, MatchResult, SegmentIdState, assign_segments, match_clusters, resolve_names
from shared.segments.lineage import segment_sort_key
from shared.storage import SegmentInfo

STATE_COLUMNS = ("segment", "name", "status", "strength", "changed", "moved", "from_segment", "reason", "held")


@dataclass
class RelabelOutcome:
    """Everything one relabel decided; the service persists it, the benchmark measures it."""

    version: int
    previous_version: int | None
    assignments: pd.DataFrame  # index shop_id: STATE_COLUMNS (+ "label" for eligible retailers)
    changes: list[dict[str, Any]]
    lineage: dict[str, Any]
    segments: list[SegmentInfo]
    retired: list[str]
    serving: Serving
    state: SegmentIdState
    counts: dict[str, int] = field(default_factory=dict)

    def book(self) -> Book:
        """The book after this relabel (the input of the next one)."""
        state = self.assignments[["segment", "status", "strength"]]
        return Book(state, {s.segment_id: s for s in self.segments}, self.state, self.version)


def relabel(book: Book, features: pd.DataFrame, bundle: ModelBundle, version: int,
            params: MatchParams | None = None) -> RelabelOutcome:
    """Apply model ``version`` (``bundle``) to the eligible retailers' ``features`` (index shop_id, the bundle's
    columns among the columns), continuing the segments of ``book``."""
    params = params or MatchParams()
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version: must be a positive integer, got {version!r}")
    features = _check_features(features, bundle)
    labels, strengths, nearest = predict_with_nearest(bundle, features)  # nearest: for the noise rows
    label_series = pd.Series(labels, index=features.index)
    previous = previous_frame(book.assignments)
    result = match_clusters(previous["segment"], label_series, book.state, params)
    decided = assign_segments(previous, label_series, pd.Series(strengths, index=features.index), result, params,
                              reason="retrain", nearest=pd.Series(nearest, index=features.index)).set_index("shop_id")
    decided["label"] = labels
    gone = _ineligible(previous, features.index, reason="retrain")

    active = sorted(set(result.cluster_to_segment.values()), key=segment_sort_key)
    profiles = _profiles(features, bundle, decided, result, version)
    names = resolve_names(result, {s: info.name for s, info in book.segments.items()},
                          {s: naming_input(p) for s, p in profiles.items()})
    assignments = pd.concat([decided, gone]) if len(gone) else decided
    assignments.index = shop_index(assignments.index)
    assignments["name"] = assignments["segment"].map(names).astype(object).where(assignments["segment"].notna(), None)
    assignments["moved"] = assignments["changed"] | (assignments["status"] != _aligned(previous["status"], assignments))

    sizes = assignments.loc[assignments["status"] == "assigned", "segment"].value_counts()
    parents = {child: entry["from"] for entry in result.split for child in entry["into"] if child != entry["from"]}
    segments = [
        SegmentInfo(segment_id=s, name=names[s], first_version=book.segments[s].first_version if s in book.segments
                    else version, last_version=version, status="active", size=int(sizes.get(s, 0)),
                    profile=profiles[s], parent_segment=parents.get(s))
        for s in active
    ]
    retired = sorted(set(book.segments) - set(active), key=segment_sort_key)
    lineage = result.to_lineage(version, book.version)
    lineage["retired"] = sorted(set(lineage["retired"]) | set(retired), key=segment_sort_key)
    lineage["trust"] = {s: {"trust": profiles[s]["trust"], "trust_level": trust_level(profiles[s]["trust"])}
                        for s in active}
    serving = Serving(version, bundle.feature_set, dict(result.cluster_to_segment), {s: names[s] for s in active})
    changes = change_events(assignments, version)
    counts = {"retailers": len(assignments), "eligible": len(decided), "changed": len(changes),
              "held": int(decided["held"].sum()), "noise": int((assignments["status"] == "noise").sum()),
              "ineligible": int((assignments["status"] == "ineligible").sum()), "segments": len(active)}
    return RelabelOutcome(version, book.version, assignments[[*STATE_COLUMNS, "label"]], changes, lineage, segments,
                          retired, serving, result.state, counts)


def assign_online(book_rows: pd.DataFrame | None, features: pd.DataFrame, bundle: ModelBundle, serving: Serving,
                  params: MatchParams | None = None) -> pd.DataFrame:
    """The serving model's decision for a few eligible retailers (``features.updated``), with the same rules as a
    relabel: index shop_id, ``STATE_COLUMNS``; reason "features" or "new-retailer" for changes. Without
    ``params.online_moves`` a retailer pulled into another segment is held there until the next retrain decides
    (on settled data, with lineage): a retailer's features swing within a month as its records arrive, and moving
    on each swing is what makes retailers leave and come back (flap)."""
    features = _check_features(features, bundle)
    labels, strengths = predict(bundle, features)
    previous = previous_frame(book_rows)
    # every segment of the serving model is alive: weak switches and one noisy update are held as in a relabel
    result = MatchResult(
        cluster_to_segment=dict(serving.cluster_to_segment),
        continued=[{"segment": s, "cluster": c, "jaccard": 1.0} for c, s in serving.cluster_to_segment.items()],
        born=[], retired=[], split=[], merged=[], state=SegmentIdState(),
    )
    known = set(serving.cluster_to_segment)
    labels = np.where(np.isin(labels, list(known)) | (labels < 0), labels, -1)  # a cluster without segment: noise
    params = params or MatchParams()
    decided = assign_segments(previous, pd.Series(labels, index=features.index),
                              pd.Series(strengths, index=features.index), result, params, reason="features",
                              hold_switches=not params.online_moves)
    decided.index = shop_index(decided.pop("shop_id"))
    # A held retailer keeps its previous strength online: only a retrain spends the hysteresis' one-off grace, so
    # a retailer caught mid-month by noise or a weak pull elsewhere stays put until the month settles or the next
    # retrain, instead of leaving and coming back (a flap).
    held = decided["held"].to_numpy(dtype=bool)
    if held.any():
        kept = previous["strength"].reindex(decided.index).to_numpy(dtype=float)
        decided.loc[held, "strength"] = np.nan_to_num(kept[held], nan=0.0)
    decided["name"] = pd.Series([serving.names.get(s) for s in decided["segment"]], index=decided.index, dtype=object)
    decided["moved"] = decided["changed"] | (decided["status"] != _aligned(previous["status"], decided))
    return decided[list(STATE_COLUMNS)]


def mark_ineligible(book_rows: pd.DataFrame | None, shops: pd.Index, reason: str) -> pd.DataFrame:
    """Retailers that are no longer eligible: status "ineligible", a change when they held a segment."""
    previous = previous_frame(book_rows)
    gone = _ineligible(previous.loc[previous.index.intersection(shops)], pd.Index([]), reason)
    gone["name"] = None
    gone["moved"] = gone["changed"] | (_aligned(previous["status"], gone) != "ineligible")
    return gone[list(STATE_COLUMNS)]


def change_events(assignments: pd.DataFrame, version: int) -> list[dict[str, Any]]:
    """``segments.changes`` payloads of the changed rows (``status`` added: assigned | noise | ineligible)."""
    rows = assignments[assignments["changed"].to_numpy(dtype=bool)]
    return [
        {"shop_id": str(shop), "from_segment": prev, "to_segment": seg, "strength": round(float(strength), 6),
         "model_version": version, "reason": reason, "status": status}
        for shop, prev, seg, strength, reason, status in zip(
            rows.index, rows["from_segment"], rows["segment"], rows["strength"], rows["reason"], rows["status"],
            strict=True)
    ]


def _ineligible(previous: pd.DataFrame, eligible: pd.Index, reason: str) -> pd.DataFrame:
    gone = previous.loc[previous.index.difference(eligible)]
    had = gone["segment"].notna().to_numpy()
    return pd.DataFrame({
        "segment": pd.Series([None] * len(gone), index=gone.index, dtype=object),
        "status": "ineligible", "strength": 0.0, "changed": had,
        "from_segment": gone["segment"].astype(object),
        "reason": pd.Series(np.where(had, reason, None), index=gone.index, dtype=object),
        "held": False, "label": -1,
    }, index=gone.index)


def _aligned(status: pd.Series, frame: pd.DataFrame) -> np.ndarray:
    return status.reindex(frame.index).to_numpy(dtype=object)


def _check_features(features: pd.DataFrame, bundle: ModelBundle) -> pd.DataFrame:
    if not isinstance(features, pd.DataFrame):
        raise ValueError(f"features: must be a DataFrame indexed by shop_id, got {type(features).__name__}")
    missing = [c for c in bundle.columns if c not in features.columns]
    if missing:
        raise ValueError(f"features: missing column(s) {missing} of feature set {bundle.feature_set!r}")
    if features.index.has_duplicates:
        raise ValueError(f"features: shop_id {features.index[features.index.duplicated()][0]!r} appears twice")
    return features


def _profiles(features: pd.DataFrame, bundle: ModelBundle, decided: pd.DataFrame, result: MatchResult,
              version: int) -> dict[str, dict[str, Any]]:
    """Profile per segment from its members after the decision (the cluster's members when it kept none)."""
    out: dict[str, dict[str, Any]] = {}
    segment_of = decided["segment"].to_numpy(dtype=object)
    labels = decided["label"].to_numpy()
    for cluster, segment in result.cluster_to_segment.items():
        members = segment_of == segment
        if not members.any():
            members = labels == cluster
        profile = segment_profile(features.loc[members], bundle.feature_set, bundle.columns)
        trust = bundle.trust.get(int(cluster))
        out[segment] = {**profile, "source": {"model_version": version, "cluster": int(cluster)},
                        "trust": None if trust is None else round(float(trust), 4)}
    return out
