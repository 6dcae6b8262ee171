"""Persistence: the SQL registry (model versions, aliases, segments, assignment history, lineage, locks) and
the fsspec artifact store."""

from shared.storage.artifact_store import ArtifactStore
from shared.storage.db import make_engine, upgrade_database
from shared.storage.records import (
    AssignmentChange,
    AssignmentInfo,
    LineageInfo,
    ModelVersionInfo,
    SegmentInfo,
)
from shared.storage.registry import CURRENT, NotFoundError, Registry, RegistryError, StateError

__all__ = [
    "CURRENT",
    "ArtifactStore",
    "AssignmentChange",
    "AssignmentInfo",
    "LineageInfo",
    "ModelVersionInfo",
    "NotFoundError",
    "Registry",
    "RegistryError",
    "SegmentInfo",
    "StateError",
    "make_engine",
    "upgrade_database",
]
