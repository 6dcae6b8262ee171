"""``GET /v1/models`` and ``GET /v1/models/current``: registry entries with metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from services.assigner.routes.deps import Reader, RegistryDep, ServingRecord
from services.assigner.schemas import ModelList, ModelOut
from shared.storage import ModelVersionInfo

router = APIRouter(prefix="/v1/models", tags=["models"])


def model_out(info: ModelVersionInfo, serving: int | None) -> ModelOut:
    return ModelOut(version=info.version, status=info.status, feature_set=info.feature_set,
                    created_at=info.created_at, data_as_of=info.data_as_of, training_rows=info.training_rows,
                    seed=info.seed, sha256=info.sha256, artifact_uri=info.artifact_uri, aliases=list(info.aliases),
                    metrics=info.metrics, reason=info.reason, serving=info.version == serving)


@router.get("", response_model=ModelList, summary="Every registered model version, oldest first")
async def list_models(registry: RegistryDep, reader: Reader) -> ModelList:
    serving = await reader.serving()
    version = None if serving is None else int(serving["version"])
    rows = await asyncio.to_thread(registry.versions.list_versions)
    return ModelList(serving_version=version, models=[model_out(r, version) for r in rows])


@router.get("/current", response_model=ModelOut, responses={503: {"description": "no model applied yet"}},
            summary="The version serving segments now")
async def current_model(registry: RegistryDep, serving: ServingRecord) -> ModelOut:
    version = int(serving["version"])
    return model_out(await asyncio.to_thread(registry.versions.get, version), version)
