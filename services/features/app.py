"""The features service's HTTP side: ``/healthz``, ``/readyz`` (Redis, broker + topics, consumer), ``/metrics``;
the worker runs in the same event loop, started and stopped by the lifespan."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from services.features.metrics import FeaturesMetrics
from services.features.worker import FeaturesWorker
from shared.config import Settings
from shared.http import component_lifespan, create_service_app


def create_app(settings: Settings, **worker_options: Any) -> FastAPI:
    """The features app; ``worker_options`` go to ``FeaturesWorker`` (e.g. ``keeper_interval``)."""
    holder: dict[str, FeaturesWorker] = {}

    def build(app: FastAPI) -> FeaturesWorker:
        worker = FeaturesWorker(settings, FeaturesMetrics.register(app.state.metrics_registry), **worker_options)
        holder["worker"] = app.state.worker = worker
        return worker

    async def redis_ready() -> bool:
        return "worker" in holder and await holder["worker"].redis_ready()

    readiness = {
        "redis": redis_ready,
        "kafka": lambda: "worker" in holder and holder["worker"].broker_ready(),
        "consumer": lambda: "worker" in holder and holder["worker"].consumer_ready(),
    }
    return create_service_app("features", settings, readiness, lifespan=component_lifespan(build))
