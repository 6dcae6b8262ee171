"""What every part of the registry shares: the database (engine, explicit transactions), upserts, input checks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from shared.storage.db import make_engine, writer
from shared.storage.models import Base

T = TypeVar("T")


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


def record_of(record: type[T], row: Any, **given: Any) -> T:
    """The frozen record (``records.py``) of an ORM row: each field from the row's attribute of that name,
    unless ``given``."""
    return record(**{f.name: getattr(row, f.name) for f in fields(record) if f.name not in given}, **given)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Database:
    """Holds the engine; every public operation of a part runs in one explicit transaction (``write`` / ``read``)."""

    def __init__(self, engine_or_url: Engine | str) -> None:
        self._owns_engine = not isinstance(engine_or_url, Engine)
        self.engine: Engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
        self._writer = writer(self.engine)

    def close(self) -> None:
        """Release the connection pool (only when the database created the engine itself)."""
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any exception (SQLite: BEGIN IMMEDIATE)."""
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session


class Part:
    """One resource of the registry (versions, segments, history, locks, explorer) on a shared ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db


def dialect_insert(session: Session, model: type[Base]) -> Any:
    """The dialect's INSERT (it has ``on_conflict_do_update`` / ``on_conflict_do_nothing``)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"database dialect {dialect!r} is not supported (use SQLite or PostgreSQL)")


def one_of(session: Session, column: sa.ColumnElement[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``column = ANY(:array)`` (one parameter, much faster for 1000s)."""
    if session.get_bind().dialect.name == "postgresql":
        array = sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column == sa.any_(array)
    return column.in_(values)


def bulk_insert(
    session: Session, table: sa.Table, rows: list[dict[str, Any]], constants: dict[str, Any] | None = None
) -> None:
    """Insert many flat rows fast, in the session's transaction: values go through each column type's bind
    processor once per value (``constants``, shared by every row, only once) and then straight to the driver:
    COPY on PostgreSQL, a statement compiled once and ``executemany`` on SQLite."""
    if not rows:
        return
    connection, constants = session.connection(), constants or {}
    dialect, keys = connection.dialect, list(rows[0])
    columns = [*keys, *constants]
    process = {c: table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns}
    shared = {c: v if process[c] is None or v is None else process[c](v) for c, v in constants.items()}
    converters = [(k, process[k]) for k in keys]

    def values(row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] if f is None or row[k] is None else f(row[k]) for k, f in converters} | shared

    cursor = connection.connection.dbapi_connection.cursor()
    try:
        if dialect.name == "postgresql":
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(list(values(row).values()))
        else:
            compiled = table.insert().compile(dialect=dialect, column_keys=columns)
            order = compiled.positiontup or []
            cursor.executemany(compiled.string, [tuple(v[name] for name in order) for v in map(values, rows)])
    finally:
        cursor.close()
