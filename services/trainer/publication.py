"""Making a trained model durable: artifact upload, registry rows, and clean-up after a crash.

Order of a publication (each step durable before the next starts): the bundle directory goes to the artifact
store under a content-addressed name (committed atomically by :class:`ArtifactStore`), then the version is
registered as a candidate with its artifact URI and manifest SHA-256, then published (``current`` moved) in one
transaction; only after that is ``models.published`` sent. A crash between steps leaves either an artifact no
version references, or a candidate nobody will publish: :func:`recover` (run under the training lock) deletes
the first and rejects the second, so a half-registered version is never visible as published or current.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from fsspec.core import url_to_fs

from services.trainer.snapshot import Snapshot
from shared.artifacts import MANIFEST, ArtifactIntegrityError
from shared.logging import get_logger
from shared.model.params import ModelParams
from shared.storage import ArtifactStore, ModelVersionInfo, Registry

log = get_logger("stableseg.trainer.publication")
ARTIFACT_PREFIX = "model-"
ABANDONED = "abandoned: the trainer stopped before publishing this candidate"


def artifact_name(feature_set: str, sha256: str) -> str:
    """Content-addressed artifact name, e.g. ``model-behaviour-v2-1f3a...`` (16 hex digits of the manifest)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", feature_set)[:64]
    return f"{ARTIFACT_PREFIX}{safe}-{sha256[:16]}"


def _stored_manifest_sha(store: ArtifactStore, name: str) -> str:
    fs, path = url_to_fs(store.uri_for(name))
    return hashlib.sha256(fs.cat_file(f"{path.rstrip('/')}/{MANIFEST}")).hexdigest()


def store_artifact(store: ArtifactStore, directory: str, feature_set: str, sha256: str) -> str:
    """Upload the bundle directory (or reuse the identical artifact already stored); returns its URI."""
    name = artifact_name(feature_set, sha256)
    for _ in range(2):
        if store.exists(name):
            if _stored_manifest_sha(store, name) != sha256:
                raise ArtifactIntegrityError(f"{name}: stored manifest differs from the trained model's {sha256}")
            log.info("artifacts.reused", name=name)
            return store.uri_for(name)
        try:
            return store.put_dir(directory, name)
        except FileExistsError:
            continue  # committed by someone else between exists() and put_dir(): compare and reuse
    raise ArtifactIntegrityError(f"{name}: could not be stored or reused")


def _version_fields(snapshot: Snapshot, params: ModelParams, metrics: dict[str, Any], tags: dict[str, Any]) -> dict:
    return {
        "feature_set": snapshot.feature_set,
        "params": params.model_dump(),
        "metrics": metrics,
        "training_rows": snapshot.rows,
        "data_as_of": snapshot.data_as_of,
        "seed": params.seed,
        "tags": tags,
        "created_at": snapshot.taken_at,
    }


def register_published(
    registry: Registry, snapshot: Snapshot, params: ModelParams, metrics: dict[str, Any], tags: dict[str, Any],
    artifact_uri: str, sha256: str, before_publish: Any = None,
) -> ModelVersionInfo:
    """Register the candidate with its artifact, then publish it and point ``current`` at it."""
    version = registry.versions.register_candidate(
        **_version_fields(snapshot, params, metrics, tags), artifact_uri=artifact_uri, sha256=sha256
    )
    if before_publish is not None:
        before_publish(version)
    return registry.versions.mark_published(version)


def register_rejected(
    registry: Registry, snapshot: Snapshot, params: ModelParams, metrics: dict[str, Any], tags: dict[str, Any],
    reason: str,
) -> ModelVersionInfo:
    """Record a model that failed the quality gates (no artifact; ``current`` stays where it is)."""
    version = registry.versions.register_candidate(**_version_fields(snapshot, params, metrics, tags))
    registry.versions.mark_rejected(version, reason)
    return registry.versions.get(version)


def recover(registry: Registry, store: ArtifactStore) -> dict[str, list]:
    """After a crash (call with the training lock held): reject stale candidates, delete unreferenced artifacts."""
    rejected = []
    for info in registry.versions.list_versions(status="candidate"):
        registry.versions.mark_rejected(info.version, ABANDONED)
        rejected.append(info.version)
    referenced = {info.artifact_uri for info in registry.versions.list_versions() if info.artifact_uri}
    deleted = []
    for name in store.list_names():
        if name.startswith(ARTIFACT_PREFIX) and store.uri_for(name) not in referenced:
            store.delete(name)
            deleted.append(name)
    if rejected or deleted:
        log.warning("trainer.recovered", rejected_candidates=rejected, deleted_artifacts=deleted)
    return {"rejected": rejected, "deleted": deleted}


def served_by_version(registry: Registry, since: datetime) -> int | None:
    """A finished version (published or gate-rejected; not abandoned) whose snapshot was taken at or after
    ``since``: triggers that arrived before that snapshot are already served by it. ``created_at`` of a version
    is the moment its training read the snapshot."""
    for info in reversed(registry.versions.list_versions()):
        finished = info.status in ("published", "rejected", "retired") and info.reason != ABANDONED
        if finished and info.created_at >= since:
            return info.version
    return None
