"""What every part of the registry shares: the engine, explicit transactions, upserts, input checks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from shared.storage.db import make_engine, writer
from shared.storage.models import Base


class RegistryError(Exception):
    """Base class of the registry's own errors."""


class NotFoundError(RegistryError, LookupError):
    """A version, alias or segment that does not exist."""


class StateError(RegistryError, ValueError):
    """An operation that the current state forbids (e.g. publishing a rejected version)."""


def check_json(field: str, value: Any) -> Any:
    """``value`` unchanged if it is a JSON object of finite numbers; a ValueError naming ``field`` otherwise."""
    if not isinstance(value, dict):
        raise ValueError(f"{field}: must be a JSON object (dict), got {type(value).__name__}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field}: not storable as JSON ({exc})") from exc
    return value


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RegistryBase:
    """Holds the engine; every public operation runs in one explicit transaction (``_write`` / ``_read``)."""

    def __init__(self, engine_or_url: Engine | str) -> None:
        self._owns_engine = not isinstance(engine_or_url, Engine)
        self.engine: Engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
        self._writer = writer(self.engine)

    def close(self) -> None:
        """Release the connection pool (only when the registry created the engine itself)."""
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> RegistryBase:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any exception (SQLite: BEGIN IMMEDIATE)."""
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def _insert(self, session: Session, model: type[Base]) -> Any:
        """The dialect's INSERT (it has ``on_conflict_do_update`` / ``on_conflict_do_nothing``)."""
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            return postgresql.insert(model)
        if dialect == "sqlite":
            return sqlite.insert(model)
        raise NotImplementedError(f"database dialect {dialect!r} is not supported (use SQLite or PostgreSQL)")

    def _one_of(self, session: Session, column: sa.ColumnElement[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
        """``column IN values``; on PostgreSQL ``column = ANY(:array)`` (one parameter, much faster for 1000s)."""
        if session.get_bind().dialect.name == "postgresql":
            array = sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
            return column == sa.any_(array)
        return column.in_(values)

    def _bulk_insert(self, session: Session, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Insert many flat rows fast: COPY on PostgreSQL, executemany elsewhere (same transaction)."""
        if not rows:
            return
        connection = session.connection()
        if connection.dialect.name != "postgresql":
            connection.execute(table.insert(), rows)
            return
        columns = list(rows[0])
        convert = [getattr(table.c[c].type, "process_bind_param", None) for c in columns]
        dialect = connection.dialect
        with (
            connection.connection.dbapi_connection.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(
                    [row[c] if f is None else f(row[c], dialect) for c, f in zip(columns, convert, strict=True)]
                )
