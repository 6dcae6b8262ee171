"""The one SQL schema of the system (SQLAlchemy 2 ORM). Changes go through alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.schemas import ID_MAX_LENGTH

VERSION_STATUSES = ("candidate", "published", "rejected", "retired")
SEGMENT_STATUSES = ("active", "retired")
ASSIGNMENT_STATUSES = ("assigned", "noise", "ineligible", "unknown")  # the statuses of the public contract
NAME_MAX_LENGTH = 64  # feature set, alias and lock names

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timestamps stored as naive UTC on every backend and returned timezone-aware (UTC)."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value.isoformat()} has no timezone (expected an aware UTC datetime)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class ModelVersion(Base):
    """An immutable, numbered model version (MLflow-style); only status, reason and artifact fields change."""

    __tablename__ = "model_versions"
    __table_args__ = (
        sa.CheckConstraint(_in("status", VERSION_STATUSES), name="status"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.CheckConstraint(
            "status <> 'published' OR (artifact_uri IS NOT NULL AND sha256 IS NOT NULL)", name="published_artifact"
        ),
    )

    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    feature_set: Mapped[str] = mapped_column(sa.String(NAME_MAX_LENGTH))
    params: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    training_rows: Mapped[int]
    data_as_of: Mapped[str] = mapped_column(sa.String(7))
    artifact_uri: Mapped[str | None] = mapped_column(sa.Text)
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default="candidate")
    reason: Mapped[str | None] = mapped_column(sa.Text)
    tags: Mapped[dict[str, Any]]
    seed: Mapped[int]


class Alias(Base):
    """A named pointer at a version (e.g. ``current``); moving it is how a model is promoted or rolled back."""

    __tablename__ = "aliases"

    name: Mapped[str] = mapped_column(sa.String(NAME_MAX_LENGTH), primary_key=True)
    version: Mapped[int] = mapped_column(sa.ForeignKey("model_versions.version"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Segment(Base):
    """A stable segment identity (``seg-0007``) across retrains."""

    __tablename__ = "segments"
    __table_args__ = (sa.CheckConstraint(_in("status", SEGMENT_STATUSES), name="status"),)

    segment_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    parent_segment: Mapped[str | None] = mapped_column(sa.ForeignKey("segments.segment_id"))
    first_version: Mapped[int] = mapped_column(sa.ForeignKey("model_versions.version"))
    last_version: Mapped[int] = mapped_column(sa.ForeignKey("model_versions.version"))
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    size: Mapped[int] = mapped_column(default=0)
    profile: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SegmentIdState(Base):
    """A single row: the next segment number to hand out (ids are never reused)."""

    __tablename__ = "segment_id_state"
    __table_args__ = (
        sa.CheckConstraint("id = 1", name="single_row"),
        sa.CheckConstraint("next_number >= 1", name="next_number_positive"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    next_number: Mapped[int]


class Assignment(Base):
    """One interval of a retailer's segment history; ``valid_to`` NULL marks the current row."""

    __tablename__ = "assignments"
    __table_args__ = (
        sa.Index("ix_assignments_shop_id_valid_to", "shop_id", "valid_to"),
        sa.Index(
            "uq_assignments_current_shop",
            "shop_id",
            unique=True,
            sqlite_where=sa.text("valid_to IS NULL"),
            postgresql_where=sa.text("valid_to IS NULL"),
        ),
        sa.CheckConstraint(_in("status", ASSIGNMENT_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    shop_id: Mapped[str] = mapped_column(sa.String(ID_MAX_LENGTH))
    segment_id: Mapped[str | None] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16))
    strength: Mapped[float | None]
    model_version: Mapped[int | None] = mapped_column(sa.ForeignKey("model_versions.version"))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime | None]


class Lineage(Base):
    """How a version's segments descend from the previous version's (the ``segments.lineage`` payload)."""

    __tablename__ = "lineage"

    model_version: Mapped[int] = mapped_column(sa.ForeignKey("model_versions.version"), primary_key=True)
    previous_version: Mapped[int | None] = mapped_column(sa.ForeignKey("model_versions.version"))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lock(Base):
    """A named lease (owner + expiry) that works the same on SQLite and PostgreSQL."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(sa.String(NAME_MAX_LENGTH), primary_key=True)
    owner: Mapped[str | None] = mapped_column(sa.String(200))
    acquired_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
