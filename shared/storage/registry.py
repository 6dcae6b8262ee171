"""The model registry and segment store: ``Registry(engine_or_url)``.

One class, one transaction per call, on SQLite (default) or PostgreSQL (production); the schema comes from the
alembic migrations (``shared.storage.db.upgrade_database``). The operations live in small mixins:
versions and aliases (``versions.py``), segments, segment ids and lineage (``segments.py``), assignment
history (``assignments.py``), leases (``locks.py``) and the explorer's read-only queries (``explore.py``).
"""

from __future__ import annotations

from shared.storage.assignments import AssignmentsMixin
from shared.storage.base import NotFoundError, RegistryError, StateError
from shared.storage.db import upgrade_database
from shared.storage.explore import ChangeRow, ExploreMixin
from shared.storage.locks import TRAINING_LOCK, LocksMixin
from shared.storage.segments import SegmentsMixin
from shared.storage.versions import CURRENT, VersionsMixin


class Registry(VersionsMixin, SegmentsMixin, AssignmentsMixin, LocksMixin, ExploreMixin):
    """Model versions, aliases, segments, assignment history, lineage and locks in one SQL database."""

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Registry:
        """What a service does at start: migrate the schema to head (unless ``upgrade=False``), then connect."""
        registry = cls(url)
        if upgrade:
            upgrade_database(registry.engine)
        return registry

    def __enter__(self) -> Registry:
        return self


__all__ = ["CURRENT", "TRAINING_LOCK", "ChangeRow", "NotFoundError", "Registry", "RegistryError", "StateError"]
