"""The ingest service app: ``POST /v1/sales`` on the shared HTTP base, Kafka link started in the lifespan."""

from __future__ import annotations

from fastapi import FastAPI

from services.ingest.broker import BrokerLink
from services.ingest.metrics import IngestMetrics
from services.ingest.routes import sales_router
from shared.config import Settings
from shared.http import component_lifespan, create_service_app


def create_app(settings: Settings, topic_check_interval: float | None = None) -> FastAPI:
    """The ingest FastAPI app. Ready (``/readyz``) once the broker is reachable and every topic exists."""
    link = BrokerLink(settings, check_interval=topic_check_interval)
    app = create_service_app("ingest", settings, {"kafka": lambda: link.ready},
                             lifespan=component_lifespan(lambda _: link), write_tokens=("ingest_token",))
    app.state.broker = link
    metrics = IngestMetrics.register(app.state.metrics_registry)
    app.include_router(sales_router(settings, link, metrics))
    return app
