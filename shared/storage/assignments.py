"""Assignment history: one row per interval of a retailer's segment, closed and opened in bulk."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.logging import get_logger
from shared.schemas import ID_MAX_LENGTH
from shared.storage.base import Part, bulk_insert, chunks, one_of
from shared.storage.models import ASSIGNMENT_STATUSES, Assignment, utcnow
from shared.storage.records import AssignmentChange, AssignmentInfo

log = get_logger(__name__)
CHUNK = 1000  # ids per IN (...) list: well below SQLite's and PostgreSQL's parameter limits


def _change(item: AssignmentChange | Mapping[str, Any]) -> AssignmentChange:
    """Accept an AssignmentChange or a mapping (segment under ``segment_id``, ``to_segment`` or ``segment``)."""
    if isinstance(item, AssignmentChange):
        change = item
    else:
        segment = next((item[k] for k in ("segment_id", "to_segment", "segment") if k in item), None)
        status = item.get("status", "assigned" if segment is not None else None)
        if status is None:
            raise ValueError(f"status: shop {item.get('shop_id')!r} has no segment; say why ({ASSIGNMENT_STATUSES})")
        change = AssignmentChange(
            str(item.get("shop_id", "")), segment, status, item.get("strength"), item.get("reason")
        )
    where = f"shop {change.shop_id!r}"
    if not change.shop_id or len(change.shop_id) > ID_MAX_LENGTH:
        raise ValueError(f"shop_id: must be 1-{ID_MAX_LENGTH} characters, got {change.shop_id!r}")
    if change.status not in ASSIGNMENT_STATUSES:
        raise ValueError(f"status: {where} has {change.status!r}, expected one of {ASSIGNMENT_STATUSES}")
    if (change.status == "assigned") != (change.segment_id is not None):
        raise ValueError(
            f"segment_id: {where} is {change.status!r} with segment {change.segment_id!r} "
            "(a segment is required exactly when the status is 'assigned')"
        )
    if change.strength is not None and not (math.isfinite(change.strength) and 0 <= change.strength <= 1):
        raise ValueError(f"strength: {where} has {change.strength!r}, expected a number in [0, 1]")
    return change


# The columns of AssignmentInfo, in its field order.
_COLUMNS = (
    Assignment.shop_id, Assignment.segment_id, Assignment.status, Assignment.strength,
    Assignment.model_version, Assignment.reason, Assignment.valid_from, Assignment.valid_to,
)


class AssignmentHistory(Part):
    """Recording and reading retailers' segment history."""

    def record_assignments(
        self,
        changes: Iterable[AssignmentChange | Mapping[str, Any]],
        model_version: int | None,
        at: datetime | None = None,
    ) -> int:
        """Close each retailer's current row at ``at`` and open a new one, in one transaction; returns how many
        rows were opened. A change equal to the current state (segment, status, version, strength) is skipped, so
        replays are harmless; a change dated before the current row's start is an error.
        """
        at = at or utcnow()
        if at.tzinfo is None:
            raise ValueError("at: must be a timezone-aware datetime (UTC)")
        items = [_change(item) for item in changes]
        by_shop = {c.shop_id: c for c in items}
        if len(by_shop) != len(items):
            raise ValueError("shop_id: a retailer appears more than once in one batch of changes")
        opened = 0
        with self.db.write() as session:
            for batch in chunks(list(by_shop), CHUNK):
                opened += self._apply(session, [by_shop[s] for s in batch], model_version, at)
        log.info("registry.assignments", changes=len(items), opened=opened, model_version=model_version)
        return opened

    def _apply(self, session: Session, batch: Sequence[AssignmentChange], version: int | None, at: datetime) -> int:
        query = sa.select(
            Assignment.id,
            Assignment.shop_id,
            Assignment.segment_id,
            Assignment.status,
            Assignment.model_version,
            Assignment.strength,
            Assignment.valid_from,
        ).where(Assignment.valid_to.is_(None), one_of(session, Assignment.shop_id, [c.shop_id for c in batch]))
        connection = session.connection()  # Core from here on: no ORM work per row
        current = {row.shop_id: row for row in connection.execute(query).all()}
        close: list[int] = []
        rows: list[dict[str, Any]] = []
        for change in batch:
            row = current.get(change.shop_id)
            if row is not None:
                if (row.segment_id, row.status, row.model_version, row.strength) == (
                    change.segment_id, change.status, version, change.strength,
                ):
                    continue
                if row.valid_from > at:
                    raise ValueError(
                        f"at: {at.isoformat()} is before shop {change.shop_id!r}'s current assignment "
                        f"(since {row.valid_from.isoformat()})"
                    )
                close.append(row.id)
            rows.append({"shop_id": change.shop_id, "segment_id": change.segment_id, "status": change.status,
                         "strength": change.strength, "reason": change.reason})
        if close:
            table = Assignment.__table__
            connection.execute(table.update().where(one_of(session, table.c.id, close)).values(valid_to=at))
        bulk_insert(
            session, Assignment.__table__, rows, {"model_version": version, "valid_from": at, "valid_to": None}
        )
        return len(rows)

    def history(self, shop_id: str) -> list[AssignmentInfo]:
        """A retailer's segment over time, oldest first (the last row has ``valid_to`` None if current)."""
        query = sa.select(*_COLUMNS).where(Assignment.shop_id == shop_id).order_by(Assignment.valid_from, Assignment.id)
        with self.db.read() as session:
            return [AssignmentInfo(*row) for row in session.execute(query).all()]

    def current_assignment(self, shop_id: str) -> AssignmentInfo | None:
        """The retailer's current row, or None if it was never assigned."""
        return self.current_assignments([shop_id]).get(shop_id)

    def current_assignments(self, shop_ids: Iterable[str] | None = None) -> dict[str, AssignmentInfo]:
        """Current rows by shop id: for the given retailers, or for all when ``shop_ids`` is None."""
        base = sa.select(*_COLUMNS).where(Assignment.valid_to.is_(None))
        with self.db.read() as session:
            if shop_ids is None:
                return {row[0]: AssignmentInfo(*row) for row in session.execute(base).all()}
            result: dict[str, AssignmentInfo] = {}
            for batch in chunks(list(dict.fromkeys(shop_ids)), CHUNK):
                query = base.where(one_of(session, Assignment.shop_id, batch))
                result.update({row[0]: AssignmentInfo(*row) for row in session.execute(query).all()})
            return result
