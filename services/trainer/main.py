"""``stableseg serve trainer``: the trainer service in the foreground (uvicorn)."""

from __future__ import annotations

import uvicorn

from services.trainer.app import create_app
from shared.config import Settings


def run(settings: Settings) -> None:
    """Serve the trainer on ``settings.bind_host:settings.trainer_port`` until SIGTERM/SIGINT (a training in
    progress is abandoned; its triggers are not committed, so the next start trains again)."""
    uvicorn.run(
        create_app(settings),
        host=settings.bind_host,
        port=settings.trainer_port,
        log_config=None,
        access_log=False,  # shared.http logs every request
        timeout_graceful_shutdown=15,
    )
