"""The model registry and segment store: ``Registry(engine_or_url)``, or ``Registry.open(url)`` at a service's start.

One transaction per call, on SQLite (default) or PostgreSQL (production); the schema comes from the alembic
migrations (``shared.storage.db.upgrade_database``). Each resource is its own class on the shared ``Database``:
``Versions`` (versions and aliases), ``Segments`` (segments, segment ids and lineage), ``AssignmentHistory``,
``Locks`` (leases) and ``Explorer`` (the segment explorer's read-only queries). ``Registry`` holds one of each on
one engine: ``registry.versions.current()``, ``registry.segments.list_segments()``, ``registry.assignments``,
``registry.locks``, ``registry.explorer``.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from shared.storage.assignments import AssignmentHistory
from shared.storage.base import Database, NotFoundError, RegistryError, StateError
from shared.storage.db import upgrade_database
from shared.storage.explore import ChangeRow, Explorer
from shared.storage.locks import TRAINING_LOCK, Locks
from shared.storage.segments import Segments
from shared.storage.versions import CURRENT, Versions


class Registry(Database):
    """Model versions, aliases, segments, assignment history, lineage and locks in one SQL database."""

    def __init__(self, engine_or_url: Engine | str) -> None:
        super().__init__(engine_or_url)
        self.versions = Versions(self)
        self.segments = Segments(self)
        self.assignments = AssignmentHistory(self)
        self.locks = Locks(self)
        self.explorer = Explorer(self)

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Registry:
        """What a service does at start: migrate the schema to head (unless ``upgrade=False``), then connect."""
        registry = cls(url)
        try:
            if upgrade:
                upgrade_database(registry.engine)
        except BaseException:
            registry.close()
            raise
        return registry


__all__ = [
    "CURRENT",
    "TRAINING_LOCK",
    "AssignmentHistory",
    "ChangeRow",
    "Database",
    "Explorer",
    "Locks",
    "NotFoundError",
    "Registry",
    "RegistryError",
    "Segments",
    "StateError",
    "Versions",
]
