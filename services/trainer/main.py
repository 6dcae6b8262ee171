"""``stableseg serve trainer``: the trainer service in the foreground (uvicorn)."""

from __future__ import annotations

from services.trainer.app import create_app
from shared.config import Settings
from shared.http import serve


def run(settings: Settings) -> None:
    """Serve the trainer on ``settings.bind_host:settings.trainer_port`` until SIGTERM/SIGINT (a training in
    progress is abandoned; its triggers are not committed, so the next start trains again)."""
    serve(create_app(settings), settings, settings.trainer_port)
