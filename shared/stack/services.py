"""The four stableseg services as background processes (``stableseg up``): pid and log files under data_dir."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from shared.config import Settings
from shared.stack.process import ManagedProcess

SERVICE_NAMES = ("ingest", "features", "trainer", "assigner")


class ServiceProcess(ManagedProcess):
    """``python -m services.cli serve <name>`` in the background; healthy when ``GET /healthz`` answers 200."""

    start_timeout = 90.0  # the trainer imports TensorFlow, the assigner loads the current model

    def __init__(self, service: str, settings: Settings) -> None:
        if service not in SERVICE_NAMES:
            raise ValueError(f"service: unknown service {service!r}; expected one of {', '.join(SERVICE_NAMES)}")
        super().__init__(getattr(settings, f"{service}_port"), settings.data_dir)
        self.name = service
        self.port_setting = f"STABLESEG_{service.upper()}_PORT"

    def binary(self) -> Path:
        return Path(sys.executable)

    def args(self) -> list[str]:
        return ["-m", "services.cli", "serve", self.name]

    def ping(self) -> bool:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1.0).status_code == 200

    def ready(self) -> tuple[bool, str]:
        """``GET /readyz``: (ready, detail)."""
        try:
            response = httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2.0)
        except httpx.HTTPError as exc:
            return False, f"unreachable: {exc.__class__.__name__}"
        return response.status_code == 200, response.text[:200]


def service_processes(settings: Settings) -> list[ServiceProcess]:
    return [ServiceProcess(name, settings) for name in SERVICE_NAMES]
