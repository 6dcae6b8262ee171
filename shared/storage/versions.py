"""The registry's model versions (immutable, numbered 1..n) and aliases (``current``), MLflow-style."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random

from shared.logging import get_logger
from shared.storage.base import NotFoundError, Part, StateError, check_json, dialect_insert, record_of
from shared.storage.models import NAME_MAX_LENGTH, Alias, ModelVersion, utcnow
from shared.storage.records import ModelVersionInfo

log = get_logger(__name__)
CURRENT = "current"
SHA256_PATTERN = r"^[0-9a-f]{64}$"


class NewVersion(BaseModel):
    """The validated input of ``register_candidate``."""

    model_config = ConfigDict(extra="forbid")

    feature_set: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    params: dict[str, Any]
    metrics: dict[str, Any]
    training_rows: int = Field(ge=0)
    data_as_of: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    seed: int
    artifact_uri: str | None = Field(None, min_length=1)
    sha256: str | None = Field(None, pattern=SHA256_PATTERN)
    tags: dict[str, Any] = Field(default_factory=dict)
    created_at: AwareDatetime | None = None

    @field_validator("params", "metrics", "tags")
    @classmethod
    def _json(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        return check_json(info.field_name, value)


def _info(row: ModelVersion, aliases: tuple[str, ...] = ()) -> ModelVersionInfo:
    return record_of(ModelVersionInfo, row, aliases=aliases)


class Versions(Part):
    """Registering, publishing, rejecting and aliasing model versions."""

    def register_candidate(
        self,
        *,
        feature_set: str,
        params: dict[str, Any],
        metrics: dict[str, Any],
        training_rows: int,
        data_as_of: str,
        seed: int,
        artifact_uri: str | None = None,
        sha256: str | None = None,
        tags: dict[str, Any] | None = None,
        created_at: datetime | None = None,
    ) -> int:
        """Register a new version as ``candidate``; returns its number (max + 1, safe under concurrency).

        ``metrics`` is ``{"latent": {...}, "raw": {...}}``; ``data_as_of`` is "YYYY-MM". Bad input raises a
        ValueError (pydantic) naming the field.
        """
        spec = NewVersion(
            feature_set=feature_set, params=params, metrics=metrics, training_rows=training_rows,
            data_as_of=data_as_of, seed=seed, artifact_uri=artifact_uri, sha256=sha256, tags=tags or {},
            created_at=created_at,
        )
        values = spec.model_dump(exclude={"created_at"})
        created_at = spec.created_at or utcnow()
        for attempt in Retrying(
            retry=retry_if_exception_type(IntegrityError),
            stop=stop_after_attempt(25),
            wait=wait_random(0, 0.05),
            reraise=True,
        ):
            with attempt, self.db.write() as session:
                latest = session.scalar(sa.select(sa.func.max(ModelVersion.version))) or 0
                session.add(ModelVersion(version=latest + 1, status="candidate", created_at=created_at, **values))
        log.info("registry.candidate", version=latest + 1, feature_set=spec.feature_set)
        return latest + 1

    def _row(self, session: Session, version: int, *, lock: bool = False) -> ModelVersion:
        query = sa.select(ModelVersion).where(ModelVersion.version == version)
        row = session.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise NotFoundError(f"version: model version {version} does not exist")
        return row

    def _set_artifact(self, row: ModelVersion, artifact_uri: str | None, sha256: str | None) -> None:
        if sha256 is not None and not re.fullmatch(SHA256_PATTERN, sha256):
            raise ValueError(f"sha256: must be 64 lower-case hex characters, got {sha256!r}")
        if artifact_uri is not None and not artifact_uri.strip():
            raise ValueError("artifact_uri: must not be empty")
        for field, value in (("artifact_uri", artifact_uri), ("sha256", sha256)):
            if value is None:
                continue
            current = getattr(row, field)
            if current is not None and current != value:
                raise StateError(f"{field}: version {row.version} already has {current!r} (versions are immutable)")
            setattr(row, field, value)

    def mark_published(
        self, version: int, artifact_uri: str | None = None, sha256: str | None = None, alias: str = CURRENT
    ) -> ModelVersionInfo:
        """Publish a candidate and point ``alias`` at it, in one transaction with its artifact uri + sha256."""
        with self.db.write() as session:
            row = self._row(session, version, lock=True)
            if row.status != "candidate":
                raise StateError(f"status: version {version} is {row.status}; only a candidate can be published")
            self._set_artifact(row, artifact_uri, sha256)
            if row.artifact_uri is None or row.sha256 is None:
                raise StateError(f"artifact_uri/sha256: version {version} cannot be published without both")
            row.status = "published"
            session.flush()
            self._point(session, alias, version)
            info = _info(row, (alias,))
        log.info("registry.published", version=version, alias=alias)
        return info

    def mark_rejected(self, version: int, reason: str) -> None:
        """Reject a candidate (e.g. it failed the quality gate); aliases stay where they are."""
        if not reason or not reason.strip():
            raise ValueError("reason: must say why the version is rejected")
        with self.db.write() as session:
            row = self._row(session, version, lock=True)
            if row.status != "candidate":
                raise StateError(f"status: version {version} is {row.status}; only a candidate can be rejected")
            row.status, row.reason = "rejected", reason
        log.info("registry.rejected", version=version, reason=reason)

    def retire(self, version: int, reason: str | None = None) -> None:
        """Retire a published version that no alias points at."""
        with self.db.write() as session:
            row = self._row(session, version, lock=True)
            if row.status != "published":
                raise StateError(f"status: version {version} is {row.status}; only a published one can be retired")
            names = session.scalars(sa.select(Alias.name).where(Alias.version == version)).all()
            if names:
                raise StateError(f"version: {version} is still the target of alias(es) {sorted(names)}")
            row.status, row.reason = "retired", reason

    def get(self, version: int) -> ModelVersionInfo:
        """One version (NotFoundError if it does not exist)."""
        with self.db.read() as session:
            row = self._row(session, version)
            names = session.scalars(sa.select(Alias.name).where(Alias.version == version)).all()
            return _info(row, tuple(sorted(names)))

    def list_versions(self, status: str | None = None) -> list[ModelVersionInfo]:
        """Every version, oldest first (optionally only those with ``status``)."""
        with self.db.read() as session:
            aliases: dict[int, list[str]] = {}
            for name, version in session.execute(sa.select(Alias.name, Alias.version).order_by(Alias.name)):
                aliases.setdefault(version, []).append(name)
            query = sa.select(ModelVersion).order_by(ModelVersion.version)
            if status is not None:
                query = query.where(ModelVersion.status == status)
            return [_info(row, tuple(aliases.get(row.version, ()))) for row in session.scalars(query)]

    def get_alias(self, name: str) -> ModelVersionInfo | None:
        """The version an alias points at, or None when the alias is not set."""
        with self.db.read() as session:
            version = session.scalar(sa.select(Alias.version).where(Alias.name == name))
        return None if version is None else self.get(version)

    def current(self) -> ModelVersionInfo | None:
        """The version serving now (alias ``current``), or None before the first publication."""
        return self.get_alias(CURRENT)

    def set_alias(self, name: str, version: int) -> None:
        """Point ``name`` at a published version: with ``current`` this is promote / roll back / roll forward."""
        if not name or len(name) > NAME_MAX_LENGTH:
            raise ValueError(f"name: alias must be 1-{NAME_MAX_LENGTH} characters, got {name!r}")
        with self.db.write() as session:
            row = self._row(session, version, lock=True)  # vs. a concurrent retire
            if row.status != "published":
                raise StateError(f"status: version {version} is {row.status}; an alias needs a published version")
            self._point(session, name, version)
        log.info("registry.alias", alias=name, version=version)

    def promote(self, version: int) -> None:
        """Make ``version`` the current one (roll back or forward)."""
        self.set_alias(CURRENT, version)

    def _point(self, session: Session, name: str, version: int) -> None:
        stmt = dialect_insert(session, Alias).values(name=name, version=version, updated_at=utcnow())
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Alias.name],
                set_={"version": stmt.excluded.version, "updated_at": stmt.excluded.updated_at},
            )
        )
