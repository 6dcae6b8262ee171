"""When the feature store is settled: the stream has caught up and no recompute is pending.

The features workers record each partition's high watermark next to the offset they applied (``hw`` and ``off``
hashes under the store's epoch prefix, field ``topic:partition``), so any process can tell, from Redis alone,
whether every record the broker holds has been applied and every touched retailer recomputed. A month is closed
(``months.closed``) only on a settled store (see ``services.features.month_gate``), and the trainer snapshots only a
settled store or says why it did not wait longer.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

HIGHWATERS, OFFSETS, DIRTY, MONTH_RETAILERS = "hw", "off", "dirty", "mr"


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


def record_highwaters(client: redis.Redis, prefix: str, highwaters: dict[str, int]) -> None:
    """Store the high watermarks a worker saw (field ``topic:partition``)."""
    if highwaters:
        client.hset(f"{prefix}{HIGHWATERS}", mapping={k: str(v) for k, v in highwaters.items()})


def store_progress(client: redis.Redis, prefix: str) -> StoreProgress:
    """Compare every recorded high watermark with the offset applied for it (one round trip)."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(f"{prefix}{HIGHWATERS}")
    pipe.hgetall(f"{prefix}{OFFSETS}")
    pipe.scard(f"{prefix}{DIRTY}")
    highs, offsets, dirty = pipe.execute()
    pending = 0
    for key, high in highs.items():
        stored = offsets.get(key)
        applied = int(stored.split(b":", 1)[0]) + 1 if stored else 0
        pending += max(0, int(high) - applied)
    return StoreProgress(pending_records=pending, dirty=int(dirty), partitions=len(highs))


def month_retailers(client: redis.Redis, prefix: str, months: list[str]) -> list[int]:
    """Retailers with data in each month (as the store counts them now)."""
    if not months:
        return []
    return [int(v or 0) for v in client.hmget(f"{prefix}{MONTH_RETAILERS}", months)]


def previous_month(month: str) -> str:
    """"YYYY-MM" of the month before."""
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year - 1:04d}-12" if mon == 1 else f"{year:04d}-{mon - 1:02d}"
