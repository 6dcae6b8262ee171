"""Read-only queries for the segment explorer (``/ui``): sizes and retailer flows at the moments versions were
applied, a segment's members, the latest changes, shop ids by prefix.

"When a version was applied" is its lineage row's ``created_at``: a relabel writes its history rows (``valid_from``
= the relabel's time) and then, later in time, the lineage row, so the history valid at ``created_at`` is the state
the relabel left. History is append-only (a row is closed at the present, never in the past), so what these
queries return for a past moment never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from shared.storage.base import Part
from shared.storage.models import Assignment, Lineage


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """One history row that moved a retailer to another segment (what ``segments.changes`` announced)."""

    id: int
    shop_id: str
    from_segment: str | None
    to_segment: str | None
    status: str
    strength: float | None
    model_version: int | None
    reason: str | None
    at: datetime


def _valid_at(table: Any, moment: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(table.valid_from <= moment, sa.or_(table.valid_to.is_(None), table.valid_to > moment))


class Explorer(Part):
    """Queries that read the assignment history as a whole (``AssignmentHistory`` reads one retailer's)."""

    def sizes_by_version(self) -> dict[int, dict[str, int]]:
        """``{version: {segment_id: assigned retailers}}`` right after each applied version's relabel."""
        a = Assignment
        query = (
            sa.select(Lineage.model_version, a.segment_id, sa.func.count())
            .join(a, _valid_at(a, Lineage.created_at))
            .where(a.status == "assigned")
            .group_by(Lineage.model_version, a.segment_id)
        )
        out: dict[int, dict[str, int]] = {}
        with self.db.read() as session:
            for version, segment, count in session.execute(query):
                out.setdefault(int(version), {})[segment] = int(count)
        return out

    def flows(self, before: datetime, after: datetime) -> list[tuple[str | None, str, str | None, str, int]]:
        """Retailers by (segment, status) at ``before`` and at ``after``: rows ``(from_segment, from_status,
        to_segment, to_status, count)``; ``from_status`` is ``"new"`` for retailers unknown at ``before``."""
        old, new = aliased(Assignment), aliased(Assignment)
        query = (
            sa.select(old.segment_id, old.status, new.segment_id, new.status, sa.func.count())
            .select_from(new)
            .outerjoin(old, sa.and_(old.shop_id == new.shop_id, _valid_at(old, before)))
            .where(_valid_at(new, after))
            .group_by(old.segment_id, old.status, new.segment_id, new.status)
        )
        with self.db.read() as session:
            return [(s1, st1 or "new", s2, st2, int(n)) for s1, st1, s2, st2, n in session.execute(query)]

    def segment_flows(self, segment_id: str, before: datetime, after: datetime
                      ) -> list[tuple[str | None, str, str | None, str, int]]:
        """The rows of :meth:`flows` that touch ``segment_id`` (into it, or out of it to anywhere else), reading
        only its members' history rather than every retailer's."""
        old, new = aliased(Assignment), aliased(Assignment)
        columns = (old.segment_id, old.status, new.segment_id, new.status, sa.func.count())
        into = (
            sa.select(*columns).select_from(new)
            .outerjoin(old, sa.and_(old.shop_id == new.shop_id, _valid_at(old, before)))
            .where(_valid_at(new, after), new.segment_id == segment_id)
            .group_by(old.segment_id, old.status, new.segment_id, new.status)
        )
        out = (
            sa.select(*columns).select_from(old)
            .join(new, sa.and_(new.shop_id == old.shop_id, _valid_at(new, after)))
            .where(_valid_at(old, before), old.segment_id == segment_id, new.segment_id.is_distinct_from(segment_id))
            .group_by(old.segment_id, old.status, new.segment_id, new.status)
        )
        with self.db.read() as session:
            rows = [*session.execute(into), *session.execute(out)]
        return [(s1, st1 or "new", s2, st2, int(n)) for s1, st1, s2, st2, n in rows]

    def segment_members(self, segment_id: str, limit: int = 25) -> list[tuple[str, float | None, datetime]]:
        """The current members held most strongly: ``(shop_id, strength when assigned, since)``."""
        a = Assignment
        query = (
            sa.select(a.shop_id, a.strength, a.valid_from)
            .where(a.valid_to.is_(None), a.segment_id == segment_id, a.status == "assigned")
            .order_by(a.strength.desc(), a.shop_id)
            .limit(limit)
        )
        with self.db.read() as session:
            return [(s, f, t) for s, f, t in session.execute(query)]

    def recent_changes(self, limit: int = 200, *, segment: str | None = None, reason: str | None = None,
                       after_id: int = 0) -> list[ChangeRow]:
        """The latest history rows that changed a retailer's segment, newest first (optionally only those
        touching ``segment``, with ``reason``, or newer than the row ``after_id``)."""
        a, p = Assignment, aliased(Assignment)
        previous = (
            sa.select(p.segment_id).where(p.shop_id == a.shop_id, p.id < a.id).order_by(p.id.desc()).limit(1)
        ).scalar_subquery()
        rows = sa.select(a.id, a.shop_id, previous.label("from_segment"), a.segment_id, a.status, a.strength,
                         a.model_version, a.reason, a.valid_from).where(a.id > after_id).subquery()
        query = sa.select(rows).where(rows.c.from_segment.is_distinct_from(rows.c.segment_id))
        if segment:
            query = query.where(sa.or_(rows.c.segment_id == segment, rows.c.from_segment == segment))
        if reason:
            query = query.where(rows.c.reason == reason)
        query = query.order_by(rows.c.id.desc()).limit(limit)
        with self.db.read() as session:
            return [ChangeRow(*row) for row in session.execute(query)]

    def shops_starting_with(self, prefix: str, limit: int = 20) -> list[str]:
        """Shop ids of the history that start with ``prefix`` (an index range scan), sorted."""
        a = Assignment
        query = (
            sa.select(a.shop_id)
            .where(a.valid_to.is_(None), a.shop_id >= prefix, a.shop_id < prefix + "\U0010ffff")
            .order_by(a.shop_id)
            .limit(limit)
        )
        with self.db.read() as session:
            return list(session.scalars(query))
