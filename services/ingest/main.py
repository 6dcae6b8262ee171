"""``stableseg serve ingest``: the ingest service in the foreground (uvicorn)."""

from __future__ import annotations

from services.ingest.app import create_app
from shared.config import Settings
from shared.http import serve


def run(settings: Settings) -> None:
    """Serve the ingest API on ``settings.bind_host:settings.ingest_port`` until SIGTERM/SIGINT."""
    serve(create_app(settings), settings, settings.ingest_port)
