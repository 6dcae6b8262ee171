"""When the feature store is settled: the stream has caught up and no recompute is pending.

The features workers record each partition's high watermark (``hw`` beside the months outbox, field
``topic:partition``; :meth:`shared.feature_store.layout.Layout.months_key`) next to the offsets the store applied,
so any process can tell, from Redis alone, whether every record the broker holds has been applied and every touched
retailer recomputed. A month is closed (``months.closed``) only on a settled store (see
``services.features.month_gate``), and the trainer snapshots only a settled store or says why it did not wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.feature_store.writer import StoreWriter

HIGHWATERS = "hw"


@dataclass(frozen=True)
class StoreProgress:
    """Records the broker holds that the store has not applied yet, and retailers waiting for a recompute."""

    pending_records: int
    dirty: int
    partitions: int

    @property
    def settled(self) -> bool:
        """Nothing known to be pending (a store no worker has reported to, e.g. written by a rebuild, counts)."""
        return self.pending_records == 0 and self.dirty == 0

    def reason(self) -> str:
        return f"{self.pending_records} record(s) not applied yet, {self.dirty} retailer(s) waiting for a recompute"


def record_highwaters(writer: StoreWriter, epoch: int, highwaters: dict[str, int]) -> None:
    """Store the high watermarks a worker saw (field ``topic:partition``)."""
    if highwaters:
        key = writer.layout.months_key(epoch, HIGHWATERS)
        writer.redis.hset(key, mapping={k: str(v) for k, v in highwaters.items()})


def store_progress(writer: StoreWriter, epoch: int) -> StoreProgress:
    """Compare every recorded high watermark with the offset every slot group applied for it."""
    highs = writer.redis.hgetall(writer.layout.months_key(epoch, HIGHWATERS))
    offsets = writer.offsets(epoch)
    pending = 0
    for key, high in highs.items():
        stored = offsets.get(key.decode() if isinstance(key, bytes) else key)
        applied = stored[0] + 1 if stored else 0
        pending += max(0, int(high) - applied)
    return StoreProgress(pending_records=pending, dirty=writer.dirty_count(epoch), partitions=len(highs))


def previous_month(month: str) -> str:
    """"YYYY-MM" of the month before."""
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year - 1:04d}-12" if mon == 1 else f"{year:04d}-{mon - 1:02d}"
