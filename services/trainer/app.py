"""The trainer's HTTP side: /healthz, /readyz (broker, Redis, database), /metrics, and ``GET /v1/status``."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request

from services.trainer.metrics import TrainerMetrics
from services.trainer.service import TrainerService
from shared.config import Settings
from shared.http import component_lifespan, create_service_app
from shared.redis_client import async_redis_client
from shared.storage import make_engine


def create_app(settings: Settings, **service_options: Any) -> FastAPI:
    """The trainer app; ``service_options`` go to :class:`TrainerService` (tests inject executor, hook, ...)."""
    redis_client = async_redis_client(settings.redis_url, cluster=settings.redis_cluster, socket_timeout=2,
                                      socket_connect_timeout=2)
    engine = make_engine(settings.effective_database_url)
    holder: dict[str, TrainerService] = {}

    def build(app: FastAPI) -> TrainerService:
        service = TrainerService(settings, app.state.trainer_metrics, **service_options)
        holder["service"] = app.state.trainer = service
        return service

    def database_ok() -> bool:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1")).scalar() == 1

    async def database() -> bool:
        return await asyncio.to_thread(database_ok)

    async def redis_ok() -> bool:
        return bool(await redis_client.ping())

    readiness = {"kafka": lambda: "service" in holder and holder["service"].link.ready, "redis": redis_ok,
                 "database": database}
    app = create_service_app("trainer", settings, readiness,
                             lifespan=component_lifespan(build, redis_client.aclose, engine.dispose))
    app.state.trainer_metrics = TrainerMetrics.register(app.state.metrics_registry)

    @app.get("/v1/status", tags=["trainer"], summary="Training state: running, pending triggers, last outcome")
    async def status(request: Request) -> dict[str, Any]:
        return request.app.state.trainer.status()

    return app
