"""What the assigner puts on the bus: ``segments.changes`` (and, with a relabel, ``segments.lineage``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.assigner.link import KafkaLink
from services.assigner.metrics import AssignerMetrics
from shared.bus import KafkaRecord, encode_event
from shared.bus.topics import SEGMENTS_CHANGES

SOURCE = "stableseg/assigner"


def change_records(changes: Sequence[dict[str, Any]]) -> list[KafkaRecord]:
    """One ``segments.changes`` event a retailer, keyed by shop id."""
    return [encode_event(SEGMENTS_CHANGES, c, key=c["shop_id"], source=SOURCE) for c in changes]


async def publish(link: KafkaLink, metrics: AssignerMetrics, records: list[KafkaRecord],
                  changes: Sequence[dict[str, Any]]) -> None:
    """Send ``records`` (acknowledged by the broker, or an exception), then count ``changes`` by reason."""
    await link.send(records)
    for change in changes:
        metrics.changes.labels(change["reason"]).inc()
