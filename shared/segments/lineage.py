"""Segment ids and the lineage of one retrain: which segments continued, were born, retired, split or merged.

Segment ids look like ``seg-0001``. They are issued from a counter (:class:`SegmentIdState`, persisted by the
caller) and never reused, even after the segment retires. :class:`MatchResult` is what
:func:`shared.segments.matching.match_clusters` returns; :meth:`MatchResult.to_lineage` is the value of a
``segments.lineage`` event (docs/asyncapi.yaml).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

SEGMENT_ID_PATTERN = re.compile(r"^seg-(\d{4,})$")
LINEAGE_FIELDS = ("model_version", "previous_version", "continued", "born", "retired", "split", "merged")


def format_segment_id(number: int) -> str:
    """``7 -> "seg-0007"`` (at least four digits; more when the counter passes 9999)."""
    if isinstance(number, bool) or not isinstance(number, Integral) or number < 1:
        raise ValueError(f"segment number: must be a positive integer, got {number!r}")
    return f"seg-{int(number):04d}"


def parse_segment_id(segment: str) -> int:
    """``"seg-0007" -> 7``; a clear ``ValueError`` for anything else."""
    match = SEGMENT_ID_PATTERN.match(segment) if isinstance(segment, str) else None
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"segment id: expected 'seg-NNNN' (a positive number), got {segment!r}")
    return int(match.group(1))


def segment_sort_key(segment: str) -> tuple[int, str]:
    """Orders segment ids by number (``seg-9999`` before ``seg-10000``)."""
    return parse_segment_id(segment), segment


@dataclass(frozen=True)
class SegmentIdState:
    """The id counter: ``next_number`` is the number the next new segment gets. Persisted by the caller."""

    next_number: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.next_number, bool) or not isinstance(self.next_number, int) or self.next_number < 1:
            raise ValueError(f"SegmentIdState.next_number: must be an integer >= 1, got {self.next_number!r}")

    def issue(self, count: int) -> tuple[list[str], SegmentIdState]:
        """``count`` fresh ids and the state after issuing them (the state itself is immutable)."""
        if count < 0:
            raise ValueError(f"count: must be >= 0, got {count}")
        ids = [format_segment_id(self.next_number + i) for i in range(count)]
        return ids, SegmentIdState(self.next_number + count)


@dataclass(frozen=True)
class MatchResult:
    """How the clusters of a new model relate to the segments of the previous one.

    - ``cluster_to_segment``: every non-noise new cluster -> its segment id (continued or new).
    - ``continued``: ``{segment, cluster, jaccard}`` for each segment a cluster continues (sorted by segment).
    - ``born``: new ids that are not split children (a merge product with a new id is born too).
    - ``retired``: previous segments no cluster continues; their ids are never issued again.
    - ``split``: ``{from, into}``: a previous segment whose members spread over several clusters, each taking
      at least ``split_min_share`` of it; ``into`` lists those clusters' segment ids, largest part first
      (it contains ``from`` itself when the dominant part continued it).
    - ``merged``: ``{from, into}``: several previous segments each sending most of their members into one
      cluster, whose segment id is ``into`` (one of ``from`` when that cluster continued it, else a new id).
    - ``stable``: continued segments whose Jaccard reached ``stable_jaccard``.
    - ``state``: the id counter after this match.
    """

    cluster_to_segment: dict[int, str]
    continued: list[dict[str, Any]]
    born: list[str]
    retired: list[str]
    split: list[dict[str, Any]]
    merged: list[dict[str, Any]]
    state: SegmentIdState
    stable: list[str] = field(default_factory=list)

    @property
    def continued_segments(self) -> set[str]:
        """Ids of the previous segments that live on in the new model."""
        return {entry["segment"] for entry in self.continued}

    def to_lineage(self, model_version: int, previous_version: int | None) -> dict[str, Any]:
        """The ``segments.lineage`` event value: exactly the contract's fields, JSON-ready."""
        for name, value, optional in (("model_version", model_version, False),
                                      ("previous_version", previous_version, True)):
            if value is None and optional:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name}: must be an integer{' or None' if optional else ''}, got {value!r}")
        return {
            "model_version": model_version,
            "previous_version": previous_version,
            "continued": [
                {"segment": c["segment"], "cluster": int(c["cluster"]), "jaccard": round(float(c["jaccard"]), 6)}
                for c in self.continued
            ],
            "born": list(self.born),
            "retired": list(self.retired),
            "split": [{"from": s["from"], "into": list(s["into"])} for s in self.split],
            "merged": [{"from": list(m["from"]), "into": m["into"]} for m in self.merged],
        }
