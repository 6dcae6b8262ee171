"""``GET /v1/segments`` and ``GET /v1/segments/{segment_id}``: size, name, profile, first and last version."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, HTTPException, Query

from services.assigner.routes.deps import RegistryDep, ServingRecord
from services.assigner.schemas import SegmentList, SegmentOut
from shared.model.selection import trust_level
from shared.segments import parse_segment_id
from shared.storage import SegmentInfo

router = APIRouter(prefix="/v1/segments", tags=["segments"])


def segment_out(info: SegmentInfo) -> SegmentOut:
    trust = info.profile.get("trust") if isinstance(info.profile, dict) else None
    return SegmentOut(segment_id=info.segment_id, name=info.name, status=info.status, size=info.size,
                      first_version=info.first_version, last_version=info.last_version,
                      parent_segment=info.parent_segment, profile=info.profile, trust=trust,
                      trust_level=trust_level(trust))


@router.get("", response_model=SegmentList, responses={503: {"description": "no model applied yet"}},
            summary="Segments (the serving model's by default)")
async def list_segments(registry: RegistryDep, serving: ServingRecord,
                        status: Literal["active", "retired", "all"] = Query("active")) -> SegmentList:
    rows = await asyncio.to_thread(registry.segments.list_segments, None if status == "all" else status)
    return SegmentList(model_version=int(serving["version"]), segments=[segment_out(s) for s in rows])


@router.get("/{segment_id}", response_model=SegmentOut, responses={404: {"description": "unknown segment"}},
            summary="One segment, active or retired")
async def get_segment(segment_id: str, registry: RegistryDep) -> SegmentOut:
    try:
        parse_segment_id(segment_id)
    except ValueError as exc:
        raise HTTPException(404, f"segment_id: {exc}") from None
    info = await asyncio.to_thread(registry.segments.get_segment, segment_id)
    if info is None:
        raise HTTPException(404, f"segment {segment_id!r} does not exist")
    return segment_out(info)
