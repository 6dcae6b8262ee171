"""The features service's HTTP side: ``/healthz``, ``/readyz`` (Redis, broker + topics, consumer), ``/metrics``;
the worker runs in the same event loop, started and stopped by the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.features.metrics import FeaturesMetrics
from services.features.worker import FeaturesWorker
from shared.config import Settings
from shared.http import create_service_app


def create_app(settings: Settings, **worker_options: Any) -> FastAPI:
    """The features app; ``worker_options`` go to ``FeaturesWorker`` (e.g. ``keeper_interval``)."""
    holder: dict[str, FeaturesWorker] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = FeaturesWorker(settings, FeaturesMetrics(app.state.metrics_registry), **worker_options)
        holder["worker"] = app.state.worker = worker
        await worker.start()
        try:
            yield
        finally:
            await worker.stop()

    async def redis_ready() -> bool:
        return "worker" in holder and await holder["worker"].redis_ready()

    readiness = {
        "redis": redis_ready,
        "kafka": lambda: "worker" in holder and holder["worker"].broker_ready(),
        "consumer": lambda: "worker" in holder and holder["worker"].consumer_ready(),
    }
    return create_service_app("features", settings, readiness, lifespan=lifespan)
