"""Admin routes (``Authorization: Bearer $STABLESEG_ADMIN_TOKEN``): request a retrain, promote a version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Path

from services.assigner.loader import ModelRefused
from services.assigner.publishing import SOURCE
from services.assigner.routes.deps import Service
from services.assigner.schemas import PromoteResult, RetrainAccepted, RetrainRequest
from shared.auth import AUTH_RESPONSES, bearer_admin
from shared.bus import training_request
from shared.config import Settings
from shared.storage import NotFoundError

REQUESTED_BY = "assigner-api"
VERSION_MAX = 2**63 - 1  # registry versions are 64-bit integers
AUTH = {**AUTH_RESPONSES, 503: {"description": "admin routes disabled (no STABLESEG_ADMIN_TOKEN), or the broker / "
                                               "the assigner is not ready"}}
VersionPath = Annotated[int, Path(ge=1, le=VERSION_MAX, description="a registry model version")]


def admin_router(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["admin"], dependencies=[Depends(bearer_admin(settings))])

    @router.post("/retrain", status_code=202, response_model=RetrainAccepted,
                 responses={**AUTH, 400: {"description": "the body is not valid JSON"}},
                 summary="Ask the trainer for a new model (training.requests)")
    async def retrain(service: Service, body: RetrainRequest | None = Body(None)) -> RetrainAccepted:
        reason = body.reason if body is not None else "api"
        record = training_request(reason, REQUESTED_BY, source=SOURCE)
        try:
            await service.link.send([record], within_s=10.0)
        except Exception as exc:
            raise HTTPException(503, f"the training request was not acknowledged by the broker: {exc!r}") from None
        return RetrainAccepted(requested=True, reason=reason, requested_by=REQUESTED_BY)

    @router.post("/models/{version}/promote", response_model=PromoteResult,
                 responses={**AUTH, 404: {"description": "unknown version"},
                            409: {"description": "the version cannot be served (not published, checksum)"}},
                 summary="Serve an earlier or later version: relabel and publish the changes")
    async def promote(version: VersionPath, service: Service) -> PromoteResult:
        if not service.initialised.is_set():
            raise HTTPException(503, "the assigner is starting")
        try:
            result = await service.promote(version)
        except NotFoundError:
            raise HTTPException(404, f"model version {version} does not exist") from None
        except ModelRefused as exc:
            raise HTTPException(409, f"model version {version} cannot be served: {exc}") from None
        return PromoteResult(**result)

    return router
