"""``stableseg serve ingest``: the ingest service in the foreground (uvicorn)."""

from __future__ import annotations

import uvicorn

from services.ingest.app import create_app
from shared.config import Settings


def run(settings: Settings) -> None:
    """Serve the ingest API on ``settings.bind_host:settings.ingest_port`` until SIGTERM/SIGINT."""
    uvicorn.run(
        create_app(settings),
        host=settings.bind_host,
        port=settings.ingest_port,
        log_config=None,
        access_log=False,  # shared.http logs every request
        timeout_graceful_shutdown=15,
    )
