"""Plain, immutable values the registry hands out (detached from any database session)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ModelVersionInfo:
    """A registry entry."""

    version: int
    created_at: datetime
    feature_set: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    training_rows: int
    data_as_of: str
    artifact_uri: str | None
    sha256: str | None
    status: str
    reason: str | None
    tags: dict[str, Any]
    seed: int
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """A stable segment identity and its latest description."""

    segment_id: str
    name: str
    first_version: int
    last_version: int
    status: str = "active"
    size: int = 0
    profile: dict[str, Any] = field(default_factory=dict)
    parent_segment: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AssignmentChange:
    """One retailer's new state, as recorded by ``AssignmentHistory.record_assignments``."""

    shop_id: str
    segment_id: str | None
    status: str = "assigned"
    strength: float | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AssignmentInfo:
    """One interval of a retailer's history (``valid_to`` None = current)."""

    shop_id: str
    segment_id: str | None
    status: str
    strength: float | None
    model_version: int | None
    reason: str | None
    valid_from: datetime
    valid_to: datetime | None


@dataclass(frozen=True, slots=True)
class LineageInfo:
    """The ``segments.lineage`` payload stored for one model version."""

    model_version: int
    previous_version: int | None
    payload: dict[str, Any]
    created_at: datetime
