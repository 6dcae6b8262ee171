"""Engines and schema migrations: one place that knows how to open the database and bring it to head.

SQLite (the embedded default) gets WAL mode, foreign keys, a busy timeout and, for write transactions,
``BEGIN IMMEDIATE`` so that concurrent writers queue instead of failing on a lock upgrade. PostgreSQL is used
as is. ``upgrade_database`` runs alembic programmatically; every service calls it at start and concurrent
callers are serialised (advisory lock on PostgreSQL, the write lock on SQLite).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from shared.logging import get_logger

log = get_logger(__name__)

#: Execution option that marks a connection as a writer (SQLite: ``BEGIN IMMEDIATE``).
WRITE_OPTION = "stableseg_write"
SQLITE_BUSY_TIMEOUT_S = 60.0
_MIGRATION_LOCK = threading.Lock()


def make_engine(url: str | sa.URL, **kwargs: object) -> Engine:
    """An engine for ``url`` with the SQLite settings described in the module docstring."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(parsed, **kwargs)
    in_memory = parsed.database in (None, "", ":memory:")
    connect_args: dict[str, object] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    if in_memory:
        kwargs.setdefault("poolclass", StaticPool)
    else:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, connect_args=connect_args, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        writer = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def writer(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions take the write lock up front on SQLite."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _alembic_config(connection: sa.Connection | None = None) -> Config:
    package = resources.files("shared.storage")
    config = Config(str(package / "alembic.ini"))
    config.set_main_option("script_location", str(package / "migrations"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration revision shipped with this code."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no alembic migrations found in shared/storage/migrations")
    return head


def current_revision(engine_or_url: Engine | str) -> str | None:
    """The revision the database is at (None for an empty database)."""
    engine = engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        if engine is not engine_or_url:
            engine.dispose()


def upgrade_database(engine_or_url: Engine | str, revision: str = "head") -> str:
    """Bring the schema to ``revision`` (default: head) with alembic; returns the revision reached.

    Safe to call from several processes at once: migrations run in one transaction behind a lock.
    """
    return _migrate(engine_or_url, command.upgrade, revision)


def downgrade_database(engine_or_url: Engine | str, revision: str) -> str:
    """Step the schema back to ``revision`` (``"base"`` = empty); returns the revision reached ("" for base)."""
    return _migrate(engine_or_url, command.downgrade, revision)


def _migrate(engine_or_url: Engine | str, step: Callable[[Config, str], None], revision: str) -> str:
    engine = engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
    try:
        # alembic's ``context`` is process-global: one migration at a time per process, the database lock
        # (see migrations/env.py) serialises processes.
        with _MIGRATION_LOCK, writer(engine).connect() as conn:
            step(_alembic_config(conn), revision)
            conn.commit()
            reached = MigrationContext.configure(conn).get_current_revision()
            conn.rollback()
        log.info("database.migrated", revision=reached, url=engine.url.render_as_string(hide_password=True))
        return reached or ""
    finally:
        if engine is not engine_or_url:
            engine.dispose()
