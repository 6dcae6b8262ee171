"""The assigner app: the query API on the shared HTTP base, the event loop started in the lifespan."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from services.assigner.link import KafkaLink
from services.assigner.metrics import AssignerMetrics
from services.assigner.routes import admin_router, models_router, retailers_router, segments_router
from services.assigner.service import AssignerService
from services.assigner.store import AsyncReader
from services.assigner.ui import ui_router
from shared.config import Settings
from shared.http import component_lifespan, create_service_app


def create_app(settings: Settings, link: KafkaLink | None = None) -> FastAPI:
    """The assigner FastAPI app. Ready (``/readyz``) when Redis, the database and the broker are reachable."""
    holder: dict[str, AssignerService] = {}

    async def database_ready() -> bool:
        registry = holder["service"].registry
        return registry is not None and await asyncio.to_thread(registry.segments.get_next_segment_number) >= 1

    reader = AsyncReader(settings.redis_url, cluster=settings.redis_cluster)
    checks = {"redis": reader.ping, "database": database_ready, "kafka": lambda: holder["service"].link.ready}
    lifespan = component_lifespan(lambda app: app.state.assigner, reader.close)
    app = create_service_app("assigner", settings, checks, lifespan=lifespan, write_tokens=("admin_token",))
    metrics = AssignerMetrics.register(app.state.metrics_registry)
    service = AssignerService(settings, metrics, link=link)
    holder["service"] = service
    app.state.assigner = service
    app.state.reader = reader
    for router in (retailers_router, segments_router, models_router, admin_router(settings), ui_router(settings)):
        app.include_router(router)
    return app
