"""Segment identity across retrains: matching new clusters to segments, lineage, per-retailer outcome, names.

Pure logic (numpy/pandas/scipy), no I/O: the assigner persists :class:`SegmentIdState`, assignments and names.
"""

from shared.segments.assignment import assign_segments
from shared.segments.lineage import (
    LINEAGE_FIELDS,
    MatchResult,
    SegmentIdState,
    format_segment_id,
    parse_segment_id,
)
from shared.segments.matching import MatchParams, match_clusters
from shared.segments.naming import NameRules, resolve_names, segment_name

__all__ = [
    "LINEAGE_FIELDS",
    "MatchParams",
    "MatchResult",
    "NameRules",
    "SegmentIdState",
    "assign_segments",
    "format_segment_id",
    "match_clusters",
    "parse_segment_id",
    "resolve_names",
    "segment_name",
]
