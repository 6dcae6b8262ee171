"""``stableseg serve assigner``: the assigner service in the foreground (uvicorn, one worker)."""

from __future__ import annotations

from services.assigner.app import create_app
from shared.config import Settings
from shared.http import serve


def run(settings: Settings) -> None:
    """Serve the assigner API on ``settings.bind_host:settings.assigner_port`` until SIGTERM/SIGINT."""
    serve(create_app(settings), settings, settings.assigner_port)
