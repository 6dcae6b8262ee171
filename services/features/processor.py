"""One batch of ``sales.monthly`` records -> Redis state, feature hashes and derived events (engine-agnostic).

Order of effects per batch (each step idempotent, so a crash anywhere is repaired by redelivery):
1. decode + validate every record (the value is the record in both CloudEvents binary mode and plain JSON);
   invalid ones go to ``sales.rejected`` (source "features") and are acknowledged before their offsets are stored;
2. APPLY per partition (cells, aggregates, revision, dirty mark, offset: one atomic script);
3. recompute the dirty shops of the batch, publish ``features.updated`` (one per shop and feature set), then
   WRITE the hashes (a shop leaves the dirty set only then);
4. close the months the data moved past into the outbox (``services/features/months.py``), record the partitions'
   high watermarks, publish the outbox's complete months (``services/features/month_gate.py``; the engines also
   call this when idle) and trim what was sent.
Redis errors are retried (tenacity) without acknowledging anything; the batch is not left until it is applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
import redis
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from services.features.compute import feature_entries
from services.features.month_gate import MonthClosePolicy, MonthGate
from services.features.months import MonthCloser
from services.features.parsing import SOURCE, fingerprint, parse
from shared.bus import KafkaRecord, encode_event
from shared.bus.topics import FEATURES_UPDATED, MONTHS_CLOSED
from shared.config import settings_default
from shared.feature_store.layout import EPOCH_KEY, Layout, check_layout
from shared.feature_store.writer import StoreWriter
from shared.features import EligibilityRule, FeatureSet
from shared.features.settlement import record_highwaters
from shared.logging import get_logger

log = get_logger("stableseg.features")
APPLY_CHUNK = 5000
Publish = Callable[[Sequence[KafkaRecord]], Awaitable[None]]
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.exceptions.ClusterDownError,
                redis.exceptions.TryAgainError)


def redis_backoff(settings: Any = None) -> wait_exponential:
    """The wait between retries of a Redis step: ``Settings.features_redis_retry_{min,max}_seconds`` of ``settings``
    (``None``: their defaults)."""
    def value(name: str) -> Any:
        return settings_default(name) if settings is None else getattr(settings, name)

    return wait_exponential(value("features_redis_retry_min_seconds"), max=value("features_redis_retry_max_seconds"))


class Record(NamedTuple):
    """What ``Processor.prepare`` reads of a Kafka record (aiokafka's ``ConsumerRecord`` has the same attributes)."""

    offset: int
    value: bytes | None
    timestamp: int  # ms


@dataclass
class Outcome:
    """What a batch did: counts, and the partitions the consumer must re-position (partition -> offset or None
    for the beginning). ``reseek_all``: the store was wiped (new epoch); re-read every partition's offset."""

    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    recomputed: int = 0
    seeks: dict[int, int | None] = field(default_factory=dict)
    reseek_all: bool = False


@dataclass
class Rows:
    """One partition's APPLY rows (``parsing.parse``, offset order), each row's slot group, and the fingerprints
    of the rows where an APPLY call starts or ends (row index -> fingerprint)."""

    rows: list[list]
    groups: list[int]
    fingerprints: dict[int, str]


@dataclass
class Prepared:
    """Parsed rows per partition and the rejection events of one batch (partition -> ``(offset, event)``)."""

    rows: dict[int, Rows]
    rejects: dict[int, list[tuple[int, KafkaRecord]]] = field(default_factory=dict)
    holes: dict[int, int] = field(default_factory=dict)  # partition -> first offset missing after its run

    def drop(self, partitions: set[int]) -> None:
        """Forget partitions the consumer re-positioned: their records, rejects included, are fetched again."""
        for partition in partitions:
            self.rows.pop(partition, None)
            self.holes.pop(partition, None)
            self.rejects.pop(partition, None)

    def new_rejects(self, applied_to: dict[int, int]) -> list[KafkaRecord]:
        """The rejection events at or past each partition's known applied offset (a re-read record that was
        already applied, and so already rejected, is not rejected twice by this worker)."""
        return [event for partition, items in self.rejects.items() for offset, event in items
                if offset >= applied_to.get(partition, -1)]


def consecutive_run(records: Sequence[Any]) -> int:
    """How many leading records have consecutive offsets (the engines deliver offsets in increasing order)."""
    if len(records) < 2 or records[-1].offset - records[0].offset == len(records) - 1:
        return len(records)
    return next(i for i in range(1, len(records)) if records[i].offset != records[i - 1].offset + 1)


class Processor:
    """Applies batches for one consumer; ``floors`` holds each partition's beginning offset (set by the consumer
    on assignment)."""

    def __init__(self, client: Any, publish: Publish, feature_sets: list[FeatureSet], rule: EligibilityRule,
                 topic: str, recompute_chunk: int = 2000, metrics: Any = None,
                 layout: Layout | None = None, month_close: MonthClosePolicy | None = None,
                 redis_wait: wait_exponential | None = None) -> None:
        self.redis = client
        self.layout = layout or Layout.from_settings()
        self.state = StoreWriter(client, self.layout)
        self.months = MonthCloser(client, self.layout, self.state)
        self.publish = publish
        self.feature_sets = feature_sets
        self.rule = rule
        self.topic = topic
        self.recompute_chunk = recompute_chunk
        self.metrics = metrics
        self.floors: dict[int, int] = {}
        self.highwaters: dict[int, int] = {}  # partition -> high watermark, kept current by the engine
        self.applied_to: dict[int, int] = {}  # partition -> next offset after what this worker applied
        self.month_gate = MonthGate(self.state, month_close or MonthClosePolicy())
        self.redis_wait = redis_wait or redis_backoff()
        self._waiting: str | None = None
        self.epoch = -1
        self.stopping = False

    def partition_key(self, partition: int) -> str:
        return f"{self.topic}:{partition}"

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking Redis step in a thread, retrying connection errors until it succeeds (or we stop)."""
        retrying = AsyncRetrying(retry=retry_if_exception_type(REDIS_ERRORS), wait=self.redis_wait,
                                 before_sleep=self._redis_down, reraise=True)
        async for attempt in retrying:
            with attempt:
                if self.stopping and attempt.retry_state.attempt_number > 1:
                    raise asyncio.CancelledError("stopping while Redis is down")
                result = await asyncio.to_thread(fn, *args)
        if self.metrics is not None:
            self.metrics.redis_up.set(1)
        return result

    def _redis_down(self, state: Any) -> None:
        if self.metrics is not None:
            self.metrics.redis_up.set(0)
        error = state.outcome.exception() if state.outcome else None
        log.warning("features.redis_unavailable", attempt=state.attempt_number, error=repr(error))

    async def load_epoch(self) -> int:
        await self.call(check_layout, self.redis, self.layout, True)
        self.epoch = int(await self.call(self.redis.get, EPOCH_KEY) or 0)
        return self.epoch

    async def stored_offsets(self) -> dict[int, tuple[int, str]]:
        if self.epoch < 0:
            await self.load_epoch()
        offsets = await self.call(self.state.offsets, self.epoch)
        head = f"{self.topic}:"
        return {int(k[len(head):]): v for k, v in offsets.items() if k.startswith(head)}

    async def forget(self, partition: int, offset: int, fp: str) -> None:
        await self.call(self.state.forget_offset, self.epoch, self.partition_key(partition), f"{offset}:{fp}")

    async def forget_log(self, partition: int) -> tuple[int, str] | None:
        """The partition's log is not the one the store applied (re-created topic): drop its stored offset so it
        is applied again from its beginning; returns what was stored."""
        self.applied_to.pop(partition, None)
        stored = (await self.stored_offsets()).get(partition)
        if stored is not None:
            await self.forget(partition, *stored)
        return stored

    async def handle(self, batches: dict[int, list[Any]]) -> Outcome:
        """Process records grouped by partition (each list in offset order)."""
        return await self.commit(self.prepare(batches))

    def prepare(self, batches: dict[int, list[Any]]) -> Prepared:
        """Step 1, CPU only (no I/O): decode and validate; the consumer overlaps it with the previous commit."""
        parsed: dict[int, Rows] = {}
        rejects: dict[int, list[tuple[int, KafkaRecord]]] = {}
        holes: dict[int, int] = {}
        for partition, records in batches.items():
            run = consecutive_run(records)
            if run < len(records):  # APPLY checks only where a chunk starts: never hand it a hole
                log.warning("features.offset_hole", partition=partition, after=records[run - 1].offset,
                            next=records[run].offset)
                holes[partition] = records[run - 1].offset + 1
                records = records[:run]
            parsed[partition] = self._rows(records, rejects.setdefault(partition, []))
        return Prepared(parsed, {p: items for p, items in rejects.items() if items}, holes)

    def _rows(self, records: Sequence[Any], rejects: list[tuple[int, KafkaRecord]]) -> Rows:
        """One partition's records -> ``Rows`` (its rejection events appended to ``rejects``)."""
        rows: list[list] = []
        groups: list[int] = []
        group_of, known = self.layout.group, {"": 0}  # a rejected row (empty shop) goes with group 0
        for record in records:
            row, reject = parse(record.offset, record.value, record.timestamp)
            rows.append(row)
            group = known.get(row[2])
            if group is None:
                group = known[row[2]] = group_of(row[2])
            groups.append(group)
            if reject is not None:
                rejects.append((record.offset, reject))
        edges = {i for start in range(0, len(rows), APPLY_CHUNK)  # first and last of each APPLY call
                 for i in (start, min(start + APPLY_CHUNK, len(rows)) - 1)}
        return Rows(rows, groups, {i: fingerprint(records[i].value, records[i].timestamp) for i in edges})

    async def commit(self, prepared: Prepared) -> Outcome:
        """Steps 2-4 (see the module docstring)."""
        out = Outcome()
        if self.epoch < 0:
            await self.load_epoch()
        parsed, rejects = prepared.rows, prepared.new_rejects(self.applied_to)
        if rejects:
            await self.publish(rejects)
            out.rejected = len(rejects)
        dirty: set[str] = set()
        latest = -1
        for partition, part in parsed.items():
            for start in range(0, len(part.rows), APPLY_CHUNK):
                end = min(start + APPLY_CHUNK, len(part.rows))
                floor = self.floors.get(partition, 0)
                res = await self.call(self.state.apply, self.epoch, self.partition_key(partition), floor,
                                      part.rows[start:end], part.groups[start:end],
                                      (part.fingerprints[start], part.fingerprints[end - 1]))
                latest = max(latest, res.latest_month)
                out.applied += res.applied
                out.duplicates += res.duplicates
                dirty.update(res.dirty)
                if res.status in ("ok", "gap"):  # the store's next offset for the partition
                    self.applied_to[partition] = res.next_offset
                if res.status == "epoch":
                    self.applied_to.clear()
                    out.reseek_all = True
                    await self.load_epoch()
                    return out
                if res.status == "gap":
                    log.warning("features.gap", partition=partition, expected=res.next_offset)
                    out.seeks[partition] = res.next_offset
                    break
                if res.status == "changed":
                    self.applied_to.pop(partition, None)
                    log.warning("features.log_changed", partition=partition, stored=await self.forget_log(partition))
                    out.seeks[partition] = None
                    break
        for partition, offset in prepared.holes.items():
            out.seeks.setdefault(partition, offset)  # the run before the hole is applied: fetch the rest again
        out.recomputed = await self.recompute(sorted(dirty))
        if latest >= 0:
            await self.call(self.months.close_through, self.epoch, latest)
        await self.flush_outbox()
        return out

    async def recompute(self, shops: list[str]) -> int:
        """Recompute, publish and write the feature hashes of ``shops``."""
        done = 0
        for start in range(0, len(shops), self.recompute_chunk):
            chunk = shops[start : start + self.recompute_chunk]
            batch = await self.call(self.state.months, self.epoch, chunk)
            entries, updates = await asyncio.to_thread(feature_entries, batch, self.feature_sets, self.rule)
            await self.publish([encode_event(FEATURES_UPDATED, u.as_event(), key=u.shop_id, source=SOURCE)
                                for u in updates])
            if await self.call(self.state.write, self.epoch, entries) < 0:
                await self.load_epoch()
                return done
            done += len(chunk)
        return done

    async def recompute_pending(self, limit: int = 20_000) -> int:
        """Shops left dirty by a crash (ours or another worker's) between APPLY and WRITE."""
        if self.epoch < 0:
            await self.load_epoch()
        await self.call(self.months.sync, self.epoch)  # a close a crash left between APPLY and CLOSE
        shops = await self.call(self.state.dirty, self.epoch, limit)
        return await self.recompute(shops) if shops else 0

    async def flush_outbox(self) -> int:
        """Record the high watermarks seen, then publish the queued months that are complete (``months``)."""
        highs = {self.partition_key(p): h for p, h in self.highwaters.items()}
        await self.call(record_highwaters, self.state, self.epoch, highs)
        sent = 0
        while True:
            items = await self.call(self.months.outbox, self.epoch, 100)
            if not items:
                return sent
            ready, waiting = await self.call(self.month_gate.ready, self.epoch, [orjson.loads(i) for i in items])
            if waiting is not None and waiting != self._waiting:
                log.info("features.month_waiting", reason=waiting)
            self._waiting = waiting
            if not ready:
                return sent
            await self.publish([encode_event(MONTHS_CLOSED, item, key="", source=SOURCE) for item in ready])
            await self.call(self.months.ack, self.epoch, len(ready))
            sent += len(ready)
            for item in ready:
                log.info("features.month_closed", **item)
            if waiting is not None:
                return sent
