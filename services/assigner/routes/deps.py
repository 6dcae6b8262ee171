"""Shared dependencies of the assigner routes (``Annotated`` aliases) and the 503 before any model exists.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, which costs more than the
whole Redis lookup of the segment endpoint.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from services.assigner.service import AssignerService
from services.assigner.store import AsyncReader
from shared.storage import Registry

NO_MODEL = "no model has been applied yet: segments exist once the trainer publishes a first model version"
NOT_READY = "the assigner is starting (database not initialised yet)"


async def _service(request: Request) -> AssignerService:
    return request.app.state.assigner


async def _reader(request: Request) -> AsyncReader:
    return request.app.state.reader


async def _registry(service: Annotated[AssignerService, Depends(_service)]) -> Registry:
    if service.registry is None:
        raise HTTPException(503, NOT_READY)
    return service.registry


async def _serving(reader: Annotated[AsyncReader, Depends(_reader)]) -> dict[str, Any]:
    serving = await reader.serving()
    if serving is None:
        raise HTTPException(503, NO_MODEL)
    return serving


Service = Annotated[AssignerService, Depends(_service)]
Reader = Annotated[AsyncReader, Depends(_reader)]
RegistryDep = Annotated[Registry, Depends(_registry)]
ServingRecord = Annotated[dict[str, Any], Depends(_serving)]
