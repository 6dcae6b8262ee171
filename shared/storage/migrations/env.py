"""Alembic environment: runs migrations on a connection handed over by ``upgrade_database`` (or opens one)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from shared.storage.db import make_engine, writer
from shared.storage.models import Base

#: First key of the PostgreSQL advisory lock that serialises concurrent upgrades (the second is the schema's hash).
MIGRATION_LOCK_KEY = 736_112

config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            lock = sa.text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))")
            connection.execute(lock, {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from shared.config import get_settings

    return get_settings().effective_database_url


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
elif (handed_over := config.attributes.get("connection")) is not None:
    _run(handed_over)
else:
    engine = make_engine(_url())
    try:
        with writer(engine).connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()
