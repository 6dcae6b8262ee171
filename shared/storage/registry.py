"""The model registry and segment store: ``Registry(engine_or_url)``, or ``Registry.open(url)`` at a service's start.

One transaction per call, on SQLite (default) or PostgreSQL (production); the schema comes from the alembic
migrations (``shared.storage.db.upgrade_database``). Each resource is its own class on the shared ``Database``:
``Versions`` (versions and aliases), ``Segments`` (segments, segment ids and lineage), ``AssignmentHistory``,
``Locks`` (leases) and ``Explorer`` (the segment explorer's read-only queries). ``Registry`` holds one of each
(``registry.versions``, ...) and answers their public methods itself, so callers need not know which part serves.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from shared.storage.assignments import AssignmentHistory
from shared.storage.base import Database, NotFoundError, RegistryError, StateError
from shared.storage.db import upgrade_database
from shared.storage.explore import ChangeRow, Explorer
from shared.storage.locks import TRAINING_LOCK, Locks
from shared.storage.segments import Segments
from shared.storage.versions import CURRENT, Versions

#: The part (attribute of ``Registry``) that serves each public method of the facade.
FACADE: dict[str, str] = {
    name: part
    for part, names in {
        "versions": ("register_candidate", "mark_published", "mark_rejected", "retire", "get", "list_versions",
                     "get_alias", "current", "set_alias", "promote"),
        "segments": ("get_next_segment_number", "upsert_segments", "retire_segments", "get_segment",
                     "list_segments", "get_lineage", "list_lineage"),
        "assignments": ("record_assignments", "history", "current_assignment", "current_assignments"),
        "locks": ("acquire_lock", "release_lock", "lock_holder", "acquire_training_lock", "release_training_lock"),
        "explorer": ("sizes_by_version", "flows", "segment_flows", "segment_members", "recent_changes",
                     "shops_starting_with"),
    }.items()
    for name in names
}


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

    def __getattr__(self, name: str) -> Any:
        """``registry.get(...)`` is ``registry.versions.get(...)``, and likewise for every name in ``FACADE``."""
        part = FACADE.get(name)
        if part is None or part not in self.__dict__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(self.__dict__[part], name)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *FACADE})


__all__ = [
    "CURRENT",
    "FACADE",
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
