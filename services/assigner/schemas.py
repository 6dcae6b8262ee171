"""Response bodies of the assigner API (they are the OpenAPI schema at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["assigned", "noise", "ineligible", "unknown"]
TrustLevel = Literal["stable", "weak", "unstable"]


class RetailerSegment(BaseModel):
    shop_id: str
    segment_id: str | None = Field(description="stable id such as seg-0007; null unless status is 'assigned'")
    segment_name: str | None
    strength: float = Field(description="membership strength in [0, 1] under the serving model (0 for noise)")
    status: Status = Field(description="assigned | noise (no segment fits) | ineligible (too little history) | "
                           "unknown (eligible but not assigned yet)")
    model_version: int | None
    since: datetime | None = Field(description="when the retailer's segment (or status) last changed")


class HistoryEntry(BaseModel):
    segment_id: str | None
    segment_name: str | None
    status: str
    strength: float | None
    model_version: int | None
    reason: str | None
    valid_from: datetime
    valid_to: datetime | None


class RetailerHistory(BaseModel):
    shop_id: str
    history: list[HistoryEntry] = Field(description="oldest first; the last entry (valid_to null) is current")


class SegmentOut(BaseModel):
    segment_id: str
    name: str
    status: Literal["active", "retired"]
    size: int = Field(description="retailers in the segment (at its last model version)")
    first_version: int
    last_version: int
    parent_segment: str | None = Field(description="the segment it split from, if any")
    profile: dict[str, Any] = Field(description="seasonality (12 monthly shares), traits, features "
                                    "({column: {mean, median, std}}), source {model_version, cluster}")
    trust: float | None = Field(None, description="bootstrap stability of the segment's cluster at training: mean "
                                "Jaccard of its best match over resamples (0-1)")
    trust_level: TrustLevel | None = Field(None, description="stable >= 0.75, weak 0.5-0.75, unstable < 0.5")


class SegmentList(BaseModel):
    model_version: int
    segments: list[SegmentOut]


class ModelOut(BaseModel):
    version: int
    status: str
    feature_set: str
    created_at: datetime
    data_as_of: str
    training_rows: int
    seed: int
    sha256: str | None
    artifact_uri: str | None
    aliases: list[str]
    metrics: dict[str, Any]
    reason: str | None
    serving: bool = Field(description="true for the version whose clusters the segments come from now")


class ModelList(BaseModel):
    serving_version: int | None
    models: list[ModelOut]


class RetrainRequest(BaseModel):
    reason: str = Field("api", min_length=1, max_length=200)


class RetrainAccepted(BaseModel):
    requested: bool
    reason: str
    requested_by: str


class PromoteResult(BaseModel):
    version: int
    previous_version: int | None
    changes: int = Field(description="segments.changes events published")
    counts: dict[str, int] = Field(default_factory=dict)
    lineage: dict[str, Any] | None
