"""The write side of the feature store (used by the features service): script calls per slot group and the reads
its processing needs. Key names and encodings: :mod:`shared.feature_store.layout`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd

from shared.feature_store.layout import YEAR0, CellReader, Layout, encode_entries, period_index
from shared.feature_store.scripts import APPLY, FORGET, WRITE
from shared.features.panel import Panel
from shared.keyspace import Script

_STATUS_ORDER = ("epoch", "changed", "gap", "ok")
_CHUNK = 5000


@dataclass
class ApplyResult:
    status: str  # ok | gap | changed | epoch
    applied: int
    duplicates: int
    next_offset: int
    latest_month: int = -1  # highest month index a group newly reached (-1: none)
    dirty: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ShopMonthsBatch:
    """Monthly aggregates of several shops as a Panel, with each shop's revision and timestamp."""

    panel: Panel
    revisions: np.ndarray
    timestamps: np.ndarray


class StoreWriter:
    """Script calls and reads of the features service; every method takes the epoch it works in."""

    def __init__(self, client: Any, layout: Layout) -> None:
        self.redis, self.layout = client, layout
        self._apply = Script(client, APPLY)
        self._write = Script(client, WRITE)
        self._forget = Script(client, FORGET)

    def apply(self, epoch: int, partition_key: str, floor: int, rows: list[list], groups: list[int],
              fingerprints: tuple[str, str]) -> ApplyResult:
        """Rows ``[offset, ts, shop, product, month index, qty]`` of one partition (offset order), each row's slot
        group (a rejected row's, empty shop: any) and the fingerprints of the first and last row: one APPLY per
        slot group, all in one pipeline."""
        layout = self.layout
        per_group: list[list] = [[] for _ in range(layout.groups)]
        for row, group in zip(rows, groups, strict=True):
            per_group[group] += row
        head = [partition_key, floor, rows[0][0], rows[-1][0], *fingerprints]
        calls = [([layout.fence(g)], [epoch, layout.group_prefix(epoch, g), *head, orjson.dumps(flat)])
                 for g, flat in enumerate(per_group)]
        return _combine(self._apply.run_many(calls))

    def write(self, epoch: int, entries: list[tuple[str, int, list]]) -> int:
        """entries: (shop, revision, [field, value, ...]); returns retailers written, -1 when fenced out."""
        per_group: dict[int, list] = {}
        for shop, revision, pairs in entries:
            per_group.setdefault(self.layout.group(shop), []).extend((shop, revision, len(pairs) // 2, *pairs))
        calls = [([self.layout.fence(g)], [epoch, self.layout.group_prefix(epoch, g), *args])
                 for g, args in per_group.items()]
        replies = [int(r) for r in self._write.run_many(calls)]
        return -1 if any(r < 0 for r in replies) else sum(replies)

    def load(self, epoch: int, frames: dict[str, pd.DataFrame], revision: int = 1, stamp_ms: int = 0) -> int:
        """Write batch-built features (one ``build_features`` frame per set, same shops) without cells, and raise
        the groups' latest month to the newest as-of (bootstrapping a store, tests)."""
        first = next(iter(frames.values()))
        shops = [str(s) for s in first.index]
        entries = encode_entries(frames, shops, np.full(len(shops), revision), np.full(len(shops), stamp_ms))
        written = sum(self.write(epoch, entries[i : i + _CHUNK]) for i in range(0, len(entries), _CHUNK))
        latest = str(max(period_index(a) for a in first["as_of"])) if shops else None
        if latest is not None:
            for g in range(self.layout.groups):
                self.redis.hset(self.layout.group_key(epoch, g, "g"), "l", latest)
        return written

    def months(self, epoch: int, shops: list[str]) -> ShopMonthsBatch:
        """Aggregates of ``shops`` (sorted, each with at least one month) in one pipelined round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for shop in shops:
            pipe.hgetall(self.layout.record(epoch, shop))
        reader = CellReader()
        code: list[int] = []
        ks: list[int] = []
        qty: list[float] = []
        uniq: list[int] = []
        revisions = np.zeros(len(shops), np.int64)
        stamps = np.zeros(len(shops), np.int64)
        for i, raw in enumerate(pipe.execute()):
            revisions[i] = int(raw.get(b"r", 0))
            stamps[i] = int(raw.get(b"t", 0))
            months, sums, counts = reader.months(raw)
            code.extend([i] * len(months))
            ks.extend(months)
            qty.extend(sums)
            uniq.extend(counts)
        k = np.array(ks, np.int64)
        panel = Panel.from_sorted(pd.Index(shops, dtype=object), np.array(code, np.int64), YEAR0 + k // 12,
                                  k % 12 + 1, np.array(qty, np.float64), np.array(uniq, np.float64))
        return ShopMonthsBatch(panel, revisions, stamps)

    def dirty(self, epoch: int, count: int) -> list[str]:
        """Up to ``count`` shops waiting for a recompute (taken from every group)."""
        pipe = self.redis.pipeline(transaction=False)
        for g in range(self.layout.groups):
            pipe.srandmember(self.layout.group_key(epoch, g, "d"), count)
        members = sorted({m.decode() for reply in pipe.execute() for m in reply or []})
        return members[:count]

    def dirty_count(self, epoch: int) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for g in range(self.layout.groups):
            pipe.scard(self.layout.group_key(epoch, g, "d"))
        return sum(int(n) for n in pipe.execute())

    def offsets(self, epoch: int) -> dict[str, tuple[int, str]]:
        """partition key -> (last offset applied in every group, its fingerprint): the lowest of the groups'."""
        pipe = self.redis.pipeline(transaction=False)
        for g in range(self.layout.groups):
            pipe.hgetall(self.layout.group_key(epoch, g, "o"))
        per_group = pipe.execute()
        out: dict[str, tuple[int, str]] = {}
        keys = {k for reply in per_group for k in reply}
        for key in keys:
            stored = [reply.get(key) for reply in per_group]
            if any(v is None for v in stored):
                continue  # a group never reached this partition: start it from the beginning
            pairs = [v.decode().split(":", 1) for v in stored]
            offset, fp = min(((int(o), f) for o, f in pairs), key=lambda p: p[0])
            out[key.decode()] = (offset, fp)
        return out

    def forget_offset(self, epoch: int, partition_key: str, expected: str) -> bool:
        """Drop a partition's stored offset in every group that still holds ``expected`` (log re-created)."""
        calls = [([self.layout.fence(g)], [epoch, self.layout.group_prefix(epoch, g), partition_key, expected])
                 for g in range(self.layout.groups)]
        return any(reply == 1 for reply in self._forget.run_many(calls))

    def month_retailers(self, epoch: int, months: list[int]) -> list[int]:
        """Retailers with data in each month (summed over the groups)."""
        if not months:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for g in range(self.layout.groups):
            pipe.hmget(self.layout.group_key(epoch, g, "mr"), [str(m) for m in months])
        totals = np.zeros(len(months), np.int64)
        for reply in pipe.execute():
            totals += np.array([int(v or 0) for v in reply], np.int64)
        return totals.tolist()

    def latest_month(self, epoch: int) -> int:
        """Highest month index in any group (-1: no data)."""
        pipe = self.redis.pipeline(transaction=False)
        for g in range(self.layout.groups):
            pipe.hget(self.layout.group_key(epoch, g, "g"), "l")
        return max((int(v) for v in pipe.execute() if v is not None), default=-1)


def _combine(replies: list[Any]) -> ApplyResult:
    """One result from the groups' replies (the most urgent status wins)."""
    parsed = []
    for reply in replies:
        status = reply[0].decode()
        if status == "epoch":
            return ApplyResult("epoch", 0, 0, -1)
        parsed.append((status, int(reply[1]), int(reply[2]), int(reply[3]), int(reply[4]), reply[5:]))
    status = min((p[0] for p in parsed), key=_STATUS_ORDER.index)
    return ApplyResult(status, sum(p[1] for p in parsed), sum(p[2] for p in parsed), min(p[3] for p in parsed),
                       max(p[4] for p in parsed), [s.decode() for p in parsed for s in p[5]])
