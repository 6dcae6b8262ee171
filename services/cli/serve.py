"""`stableseg serve SERVICE`: run one service in the foreground (the container entrypoint)."""

from __future__ import annotations

import importlib
from enum import StrEnum

import typer

from shared.config import get_settings, secret_values
from shared.logging import configure_logging


class Service(StrEnum):
    ingest = "ingest"
    features = "features"
    trainer = "trainer"
    assigner = "assigner"


def serve(service: Service = typer.Argument(..., help="which service to run")) -> None:
    """Run one service in the foreground until SIGTERM/SIGINT. Each service lives in services/<name>/main.py
    and exposes ``run(settings)``."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level, secret_values(settings))
    module = importlib.import_module(f"services.{service.value}.main")
    module.run(settings)
