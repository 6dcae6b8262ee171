"""Shared dependencies of the assigner routes (``Annotated`` aliases) and the 503 before any model exists."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from services.assigner.service import AssignerService
from services.assigner.store import AsyncReader
from shared.storage import Registry

NO_MODEL = "no model has been applied yet: segments exist once the trainer publishes a first model version"
NOT_READY = "the assigner is starting (database not initialised yet)"


def _service(request: Request) -> AssignerService:
    return request.app.state.assigner


def _reader(request: Request) -> AsyncReader:
    return request.app.state.reader


def _registry(service: Annotated[AssignerService, Depends(_service)]) -> Registry:
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
