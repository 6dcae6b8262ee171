"""``stableseg serve assigner``: the assigner service in the foreground (uvicorn, one worker)."""

from __future__ import annotations

import uvicorn

from services.assigner.app import create_app
from shared.config import Settings


def run(settings: Settings) -> None:
    """Serve the assigner API on ``settings.bind_host:settings.assigner_port`` until SIGTERM/SIGINT."""
    uvicorn.run(
        create_app(settings),
        host=settings.bind_host,
        port=settings.assigner_port,
        log_config=None,
        access_log=False,  # shared.http logs every request
        timeout_graceful_shutdown=15,
    )
