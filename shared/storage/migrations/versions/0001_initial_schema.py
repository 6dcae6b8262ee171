"""Initial schema: model versions, aliases, segments, segment id state, assignment history, lineage, locks.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types (migrations never import the live models): timestamps are naive UTC.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=False)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    target_table = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_{table}_{column}_{target_table}"))


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("feature_set", sa.String(64), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("training_rows", sa.Integer(), nullable=False),
        sa.Column("data_as_of", sa.String(7), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status <> 'published' OR (artifact_uri IS NOT NULL AND sha256 IS NOT NULL)",
            name=op.f("ck_model_versions_published_artifact"),
        ),
        sa.CheckConstraint(
            "status IN ('candidate', 'published', 'rejected', 'retired')", name=op.f("ck_model_versions_status")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_model_versions_version_positive")),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_model_versions")),
    )
    op.create_table(
        "aliases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _fk("aliases", "version", "model_versions.version"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_aliases")),
    )
    op.create_table(
        "segments",
        sa.Column("segment_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_segment", sa.String(32), nullable=True),
        sa.Column("first_version", sa.Integer(), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("profile", JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('active', 'retired')", name=op.f("ck_segments_status")),
        _fk("segments", "first_version", "model_versions.version"),
        _fk("segments", "last_version", "model_versions.version"),
        _fk("segments", "parent_segment", "segments.segment_id"),
        sa.PrimaryKeyConstraint("segment_id", name=op.f("pk_segments")),
    )
    state = op.create_table(
        "segment_id_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_number", sa.Integer(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_segment_id_state_single_row")),
        sa.CheckConstraint("next_number >= 1", name=op.f("ck_segment_id_state_next_number_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_id_state")),
    )
    op.bulk_insert(state, [{"id": 1, "next_number": 1}])
    op.create_table(
        "assignments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("segment_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("strength", sa.Double(), nullable=True),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("valid_from", TS, nullable=False),
        sa.Column("valid_to", TS, nullable=True),
        sa.CheckConstraint(
            "status IN ('assigned', 'noise', 'ineligible', 'unknown')", name=op.f("ck_assignments_status")
        ),
        _fk("assignments", "model_version", "model_versions.version"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    op.create_index("ix_assignments_shop_id_valid_to", "assignments", ["shop_id", "valid_to"])
    op.create_index(
        "uq_assignments_current_shop",
        "assignments",
        ["shop_id"],
        unique=True,
        sqlite_where=sa.text("valid_to IS NULL"),
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_table(
        "lineage",
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        _fk("lineage", "model_version", "model_versions.version"),
        _fk("lineage", "previous_version", "model_versions.version"),
        sa.PrimaryKeyConstraint("model_version", name=op.f("pk_lineage")),
    )
    op.create_table(
        "locks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("acquired_at", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_locks")),
    )


def downgrade() -> None:
    for table in ("locks", "lineage"):
        op.drop_table(table)
    op.drop_index("uq_assignments_current_shop", table_name="assignments")
    op.drop_index("ix_assignments_shop_id_valid_to", table_name="assignments")
    for table in ("assignments", "segment_id_state", "segments", "aliases", "model_versions"):
        op.drop_table(table)
