"""The write-ahead record of a relabel (``asg:{g}:pending`` in Redis): everything still to do once the next
generation is staged, so that a restart finishes the relabel exactly as it was decided (nothing is recomputed).

Its JSON form is what :class:`~services.assigner.store.AssignmentStore` keeps; ``{"rebuild": true}`` marks a
generation rebuilt from SQL, which has nothing left to do but the switch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from services.assigner.ledger import history_rows
from services.assigner.relabel import RelabelOutcome
from shared.bus import KafkaRecord, encode_event
from shared.bus.topics import SEGMENTS_CHANGES, SEGMENTS_LINEAGE
from shared.storage import SegmentInfo
from shared.storage.models import utcnow

PROMOTE = "promote"


@dataclass(frozen=True)
class PendingRelabel:
    """A relabel decided and staged, not yet in SQL, on the bus and live. ``history`` rows are
    ``[shop_id, segment, status, strength, reason]``; ``segments`` are SegmentInfo fields without ``updated_at``."""

    version: int
    previous_version: int | None
    trigger: str
    at: str  # ISO 8601: the relabel's time, also the ``valid_from`` of its history rows
    model: dict[str, Any]
    segments: list[dict[str, Any]]
    retired: list[str]
    next_number: int
    lineage: dict[str, Any]
    history: list[list[Any]]
    changes: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def promote(self) -> bool:
        """A promotion also moves the ``current`` alias once the SQL work is done."""
        return self.trigger == PROMOTE

    @classmethod
    def from_outcome(cls, outcome: RelabelOutcome, model: dict[str, Any], at: datetime, trigger: str
                     ) -> PendingRelabel:
        return cls(
            version=outcome.version, previous_version=outcome.previous_version, trigger=trigger, at=at.isoformat(),
            model=model, segments=[_segment_json(s) for s in outcome.segments], retired=list(outcome.retired),
            next_number=outcome.state.next_number, lineage=outcome.lineage,
            history=history_rows(outcome.assignments, "retrain"), changes=outcome.changes, counts=outcome.counts,
        )

    def to_json(self) -> dict[str, Any]:
        """The record as a dict for ``orjson`` (its fields are JSON values already: shared, not copied; a deep copy
        of 1M history rows and changes took ~10 s of CPU)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "promote": self.promote}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PendingRelabel:
        """The record as staged (``promote`` follows from ``trigger``)."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.at)

    def segment_infos(self) -> list[SegmentInfo]:
        return [SegmentInfo(**s) for s in self.segments]

    def event_records(self, source: str) -> list[KafkaRecord]:
        """The changes and the lineage; ids derive from the relabel, so a replay repeats them."""
        now, base = utcnow(), f"{self.version}:{self.at}"
        records = [encode_event(SEGMENTS_CHANGES, c, key=c["shop_id"], source=source, time=now,
                                event_id=f"{base}:{c['shop_id']}") for c in self.changes]
        records.append(encode_event(SEGMENTS_LINEAGE, self.lineage, key=str(self.version), source=source, time=now,
                                    event_id=f"{base}:lineage"))
        return records


def _segment_json(segment: SegmentInfo) -> dict[str, Any]:
    data = asdict(segment)
    data.pop("updated_at", None)
    return data
