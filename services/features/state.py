"""The features service's private state in Redis (under the store's epoch prefix ``ss:{e}:``) and its accessors.

- ``c:{shop}:{YYYY-MM}`` (hash): product -> qty, the latest value of each cell (the replace rule).
- ``m:{shop}`` (hash): ``YYYY-MM`` -> "sum distinct" (the monthly aggregates, re-summed from the cells whenever a
  cell of the month changes), ``_rev`` (cell changes so far), ``_ts`` (latest changing record's Kafka timestamp).
- ``off`` (hash): "topic:partition" -> "offset:fingerprint" of the last applied record.
- ``dirty`` (set): shops whose feature hashes are behind their state (the recompute outbox).
- ``mr`` (hash): month -> retailers with data in it; ``outbox:months`` (list): months.closed events to publish.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson
import pandas as pd
import redis

from services.features.lua import APPLY, WRITE
from shared.features.panel import Panel


@dataclass
class ApplyResult:
    status: str  # ok | gap | changed | epoch
    applied: int
    duplicates: int
    next_offset: int
    dirty: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ShopMonthsBatch:
    """Monthly aggregates of several shops as a Panel, with each shop's revision and timestamp."""

    panel: Panel
    revisions: np.ndarray
    timestamps: np.ndarray


class ShopState:
    """Script calls and reads of the service state; the caller passes the epoch and its prefix."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._apply = client.register_script(APPLY)
        self._write = client.register_script(WRITE)

    def apply(self, epoch: int, prefix: str, partition_key: str, floor: int, rows: list[list]) -> ApplyResult:
        """Apply rows ``[offset, fingerprint, ts, shop, product, period, qty]`` of one partition (offset order)."""
        reply = self._apply(keys=[], args=[epoch, prefix, partition_key, floor, orjson.dumps(rows)])
        status = reply[0].decode()
        if status == "epoch":
            return ApplyResult("epoch", 0, 0, -1)
        return ApplyResult(status, int(reply[1]), int(reply[2]), int(reply[3]), [s.decode() for s in reply[4:]])

    def write(self, epoch: int, prefix: str, entries: list[tuple[str, int, list[tuple[str, list]]]]) -> int:
        """entries: (shop, revision, [(feature_set, [field, value, ...])]); returns hashes written, -1 on a new
        epoch."""
        args: list[object] = [epoch, prefix, len(entries)]
        for shop, revision, hashes in entries:
            args.extend((shop, revision, len(hashes)))
            for name, pairs in hashes:
                args.extend((name, len(pairs) // 2, *pairs))
        return int(self._write(keys=[], args=args))

    def months(self, prefix: str, shops: list[str]) -> ShopMonthsBatch:
        """Aggregates of ``shops`` (sorted, each with at least one month) in one pipelined round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for shop in shops:
            pipe.hgetall(f"{prefix}m:{shop}")
        code: list[int] = []
        periods: list[bytes] = []
        values: list[bytes] = []
        revisions = np.zeros(len(shops), np.int64)
        stamps = np.zeros(len(shops), np.int64)
        for i, raw in enumerate(pipe.execute()):
            revisions[i] = int(raw.pop(b"_rev", 0))
            stamps[i] = int(raw.pop(b"_ts", 0))
            for period in sorted(raw):
                code.append(i)
                periods.append(period)
                values.append(raw[period])
        year = np.array([int(p[:4]) for p in periods], np.int64)
        month = np.array([int(p[5:7]) for p in periods], np.int64)
        pairs = [v.split(b" ") for v in values]
        qty = np.array([float(p[0]) for p in pairs], np.float64)
        uniq = np.array([float(p[1]) for p in pairs], np.float64)
        panel = Panel.from_sorted(pd.Index(shops, dtype=object), np.array(code, np.int64), year, month, qty, uniq)
        return ShopMonthsBatch(panel, revisions, stamps)

    def dirty(self, prefix: str, count: int) -> list[str]:
        """Up to ``count`` shops waiting for a recompute."""
        members = self.redis.srandmember(f"{prefix}dirty", count)
        return sorted(m.decode() for m in members or [])

    def dirty_count(self, prefix: str) -> int:
        return int(self.redis.scard(f"{prefix}dirty"))

    def offsets(self, prefix: str) -> dict[str, tuple[int, str]]:
        """partition key -> (last applied offset, fingerprint)."""
        out = {}
        for key, value in self.redis.hgetall(f"{prefix}off").items():
            offset, fp = value.decode().split(":", 1)
            out[key.decode()] = (int(offset), fp)
        return out

    def forget_offset(self, prefix: str, partition_key: str, expected: str) -> bool:
        """Drop a partition's stored offset if it still is ``offset:fingerprint`` ``expected`` (log re-created)."""
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(f"{prefix}off")
                current = pipe.hget(f"{prefix}off", partition_key)
                if current is None or current.decode() != expected:
                    return False
                pipe.multi()
                pipe.hdel(f"{prefix}off", partition_key)
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    def outbox(self, prefix: str, count: int = 100) -> list[bytes]:
        return list(self.redis.lrange(f"{prefix}outbox:months", 0, count - 1))

    def ack_outbox(self, prefix: str, count: int) -> None:
        self.redis.ltrim(f"{prefix}outbox:months", count, -1)
