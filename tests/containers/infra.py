"""What the host provides to the containers: the embedded broker and Redis on free ports, and a fresh database on
the local PostgreSQL (dropped afterwards)."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import sqlalchemy as sa

from shared.stack import EmbeddedBroker, EmbeddedRedis, free_port

POSTGRES_ENV = "STABLESEG_TEST_POSTGRES_URL"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class HostInfra:
    """``start()`` / ``stop()``; ``healthy(name)`` for the compose services it stands in for."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="stableseg-ct-")
        data = Path(self.tmp.name)
        self.broker = EmbeddedBroker(free_port(), data / "broker", die_with_parent=True)
        self.redis = EmbeddedRedis(free_port(), data / "redis", die_with_parent=True)
        self.admin_url = sa.make_url(os.environ.get(POSTGRES_ENV, DEFAULT_POSTGRES))
        self.database = f"stableseg_ct_{uuid.uuid4().hex[:10]}"
        self.database_url = self.admin_url.set(database=self.database).render_as_string(hide_password=False)

    def _admin_execute(self, statement: str) -> None:
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(statement))
        finally:
            engine.dispose()

    def start(self) -> None:
        self.broker.start()
        self.redis.start()
        self._admin_execute(f'CREATE DATABASE "{self.database}"')

    def stop(self) -> None:
        for process in (self.broker, self.redis):
            process.stop()
        self._admin_execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        self.tmp.cleanup()

    def healthy(self, name: str) -> bool:
        """The host's stand-in for compose service ``name`` (kafka, redis, postgres) answers."""
        if name == "kafka":
            return self.broker.is_healthy()
        if name == "redis":
            return self.redis.is_healthy()
        if name == "postgres":
            engine = sa.create_engine(self.database_url)
            try:
                with engine.connect() as conn:
                    return conn.execute(sa.text("SELECT 1")).scalar() == 1
            finally:
                engine.dispose()
        raise ValueError(f"no host stand-in for compose service {name!r}")

    def environment(self) -> dict[str, str]:
        """The ``${CT_*}`` endpoints the compose override reads."""
        return {"CT_KAFKA_BOOTSTRAP": self.broker.bootstrap, "CT_REDIS_URL": self.redis.url,
                "CT_DATABASE_URL": self.database_url}
