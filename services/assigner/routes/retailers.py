"""``GET /v1/retailers/{shop_id}/segment`` (one Redis round trip) and ``/history`` (SQL)."""

from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter, HTTPException, Path, Request, Response

from services.assigner.routes.deps import NO_MODEL, Reader, RegistryDep, Service
from services.assigner.schemas import HistoryEntry, RetailerHistory, RetailerSegment
from shared.schemas import ID_MAX_LENGTH

router = APIRouter(prefix="/v1/retailers", tags=["retailers"])
ShopId = Path(min_length=1, max_length=ID_MAX_LENGTH, description="the retailer's shop_id")
ERRORS = {404: {"description": "unknown retailer"}, 503: {"description": "no model applied yet"}}


def _unknown(shop_id: str) -> HTTPException:
    return HTTPException(404, f"retailer {shop_id!r} is unknown: no sales were seen and no segment was ever assigned")


async def _without_assignment(service: Service, reader: Reader, shop_id: str) -> RetailerSegment:
    """A retailer the assignments do not hold: ineligible or not assigned yet if the feature store knows it."""
    serving = await reader.serving()
    if serving is None:
        raise HTTPException(503, NO_MODEL)
    features = await asyncio.to_thread(service.features.get, shop_id, serving["feature_set"])
    if features is None:
        raise _unknown(shop_id)
    status = "unknown" if features["eligible"] else "ineligible"
    return RetailerSegment(shop_id=shop_id, segment_id=None, segment_name=None, strength=0.0, status=status,
                           model_version=int(serving["version"]), since=None)


@router.get("/{shop_id}/segment", response_model=RetailerSegment, responses=ERRORS,
            summary="The retailer's current segment")
async def retailer_segment(request: Request, shop_id: str = ShopId) -> Response:
    """The hot path: one Redis round trip, no dependency solving, the body serialised directly (the schema is
    ``RetailerSegment``)."""
    reader = request.app.state.reader
    state = await reader.get(shop_id)
    if state is None:
        body = (await _without_assignment(request.app.state.assigner, reader, shop_id)).model_dump(mode="json")
    else:
        body = {"shop_id": shop_id, "segment_id": state["segment"], "segment_name": state["name"],
                "strength": state["strength"], "status": state["status"], "model_version": state["model_version"],
                "since": state["since"]}
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/{shop_id}/history", response_model=RetailerHistory, responses=ERRORS,
            summary="The retailer's segment over time")
async def retailer_history(service: Service, reader: Reader, registry: RegistryDep,
                           shop_id: str = ShopId) -> RetailerHistory:
    rows = await asyncio.to_thread(registry.assignments.history, shop_id)
    if not rows:
        await _without_assignment(service, reader, shop_id)  # 503 / 404 as for the segment
        return RetailerHistory(shop_id=shop_id, history=[])
    names = {s.segment_id: s.name for s in await asyncio.to_thread(registry.segments.list_segments)}
    return RetailerHistory(shop_id=shop_id, history=[
        HistoryEntry(segment_id=r.segment_id, segment_name=names.get(r.segment_id or ""), status=r.status,
                     strength=r.strength, model_version=r.model_version, reason=r.reason, valid_from=r.valid_from,
                     valid_to=r.valid_to)
        for r in rows
    ])
