"""Segment identities, the never-reused segment number, and per-version lineage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.logging import get_logger
from shared.storage.base import NotFoundError, Part, StateError, check_json, dialect_insert, record_of
from shared.storage.models import SEGMENT_STATUSES, Lineage, Segment, SegmentIdState, utcnow
from shared.storage.records import LineageInfo, SegmentInfo

log = get_logger(__name__)


def _info(row: Segment) -> SegmentInfo:
    return record_of(SegmentInfo, row)


def _lineage(row: Lineage) -> LineageInfo:
    return record_of(LineageInfo, row)


def _validate(segment: SegmentInfo) -> None:
    where = f"segment {segment.segment_id!r}"
    if not segment.segment_id or len(segment.segment_id) > 32:
        raise ValueError(f"segment_id: must be 1-32 characters, got {segment.segment_id!r}")
    if segment.status not in SEGMENT_STATUSES:
        raise ValueError(f"status: {where} has {segment.status!r}, expected one of {SEGMENT_STATUSES}")
    if segment.size < 0:
        raise ValueError(f"size: {where} has {segment.size}, must be >= 0")
    if segment.first_version > segment.last_version:
        raise ValueError(f"first_version: {where} starts at {segment.first_version} after {segment.last_version}")
    check_json(f"profile ({where})", segment.profile)


class Segments(Part):
    """Segments CRUD; segment-number state and lineage change in the same transaction as the segments."""

    def get_next_segment_number(self) -> int:
        """The next never-used segment number (``seg-NNNN``)."""
        with self.db.read() as session:
            return self._next_number(session)

    def _next_number(self, session: Session, *, lock: bool = False) -> int:
        query = sa.select(SegmentIdState.next_number).where(SegmentIdState.id == 1)
        value = session.scalar(query.with_for_update() if lock else query)
        if value is None:  # pragma: no cover - the initial migration inserts the row
            raise StateError("segment_id_state: the row is missing; run `stableseg db upgrade`")
        return value

    def upsert_segments(
        self,
        segments: Iterable[SegmentInfo],
        *,
        next_number: int | None = None,
        retire: Iterable[str] = (),
        lineage: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert or update segments, retire others, move the segment-number state and store the version's
        lineage (the ``segments.lineage`` payload), all in one transaction.

        A retired segment never becomes active again, and ``next_number`` never moves backwards nor stays at or
        below a ``seg-NNNN`` number in use (ids are never reused).
        """
        # The id format has its home in shared.segments (numpy/pandas/scipy): imported only when segments change.
        from shared.segments.lineage import SEGMENT_ID_PATTERN

        items = list(segments)
        for segment in items:
            _validate(segment)
        ids = [s.segment_id for s in items]
        if len(set(ids)) != len(ids):
            raise ValueError("segment_id: the same segment appears twice in one upsert")
        retired = set(retire) - set(ids)
        with self.db.write() as session:
            current = self._next_number(session, lock=True)
            target = current if next_number is None else next_number
            if target < current:
                raise ValueError(f"next_number: {target} is below the stored {current} (segment ids are never reused)")
            for segment_id in ids:
                match = SEGMENT_ID_PATTERN.match(segment_id)
                if match is not None and int(match.group(1)) >= target:
                    raise ValueError(f"next_number: {target} would hand out {segment_id!r} again; raise it above it")
            existing = dict(
                session.execute(sa.select(Segment.segment_id, Segment.status).where(Segment.segment_id.in_(ids)))
                .tuples()
                .all()
            )
            for segment in items:
                if existing.get(segment.segment_id) == "retired" and segment.status == "active":
                    raise StateError(f"status: segment {segment.segment_id!r} is retired and cannot be reactivated")
            self._write_segments(session, items)
            if retired:
                done = session.execute(
                    sa.update(Segment)
                    .where(Segment.segment_id.in_(sorted(retired)))
                    .values(status="retired", updated_at=utcnow()),
                    execution_options={"synchronize_session": False},
                )
                if done.rowcount != len(retired):
                    raise NotFoundError(f"retire: unknown segment id(s) among {sorted(retired)}")
            if target != current:
                session.execute(sa.update(SegmentIdState).where(SegmentIdState.id == 1).values(next_number=target))
            if lineage is not None:
                self._save_lineage(session, lineage)
        log.info("registry.segments", upserted=len(items), retired=len(retired), next_number=target)

    def _write_segments(self, session: Session, items: list[SegmentInfo]) -> None:
        if not items:
            return
        now = utcnow()
        rows = [
            {
                "segment_id": s.segment_id,
                "name": s.name,
                "parent_segment": s.parent_segment,
                "first_version": s.first_version,
                "last_version": s.last_version,
                "status": s.status,
                "size": s.size,
                "profile": s.profile,
                "updated_at": now,
            }
            for s in items
        ]
        # Parents first, so that a new child may name a parent created in the same call.
        rows.sort(key=lambda r: r["parent_segment"] is not None)
        stmt = dialect_insert(session, Segment)
        updated = {c: stmt.excluded[c] for c in rows[0] if c not in ("segment_id", "first_version")}
        session.execute(stmt.on_conflict_do_update(index_elements=[Segment.segment_id], set_=updated), rows)

    def retire_segments(self, segment_ids: Iterable[str]) -> None:
        """Mark segments retired (their ids are never handed out again)."""
        self.upsert_segments([], retire=segment_ids)

    def get_segment(self, segment_id: str) -> SegmentInfo | None:
        with self.db.read() as session:
            row = session.get(Segment, segment_id)
            return None if row is None else _info(row)

    def list_segments(self, status: str | None = None) -> list[SegmentInfo]:
        """Segments ordered by id (optionally only ``active`` or ``retired`` ones)."""
        query = sa.select(Segment).order_by(Segment.segment_id)
        if status is not None:
            query = query.where(Segment.status == status)
        with self.db.read() as session:
            return [_info(row) for row in session.scalars(query)]

    def _save_lineage(self, session: Session, payload: Mapping[str, Any]) -> None:
        body = check_json("lineage", dict(payload))
        version, previous = body.get("model_version"), body.get("previous_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"lineage.model_version: must be an integer, got {version!r}")
        if previous is not None and (not isinstance(previous, int) or isinstance(previous, bool)):
            raise ValueError(f"lineage.previous_version: must be an integer or null, got {previous!r}")
        stmt = dialect_insert(session, Lineage).values(
            model_version=version, previous_version=previous, payload=body, created_at=utcnow()
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Lineage.model_version],
                set_={"previous_version": stmt.excluded.previous_version, "payload": stmt.excluded.payload},
            )
        )

    def get_lineage(self, model_version: int) -> LineageInfo | None:
        with self.db.read() as session:
            row = session.get(Lineage, model_version)
            return None if row is None else _lineage(row)

    def list_lineage(self) -> list[LineageInfo]:
        """Every applied version's lineage, in the order the versions were applied."""
        query = sa.select(Lineage).order_by(Lineage.created_at, Lineage.model_version)
        with self.db.read() as session:
            return [_lineage(row) for row in session.scalars(query)]
