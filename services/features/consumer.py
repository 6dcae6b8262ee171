"""The ``sales.monthly`` consumer: an aiokafka group member that keeps its offsets in Redis.

On every assignment it seeks each partition to the offset Redis holds (``engine.EngineBase``, shared with the
faust engine; a different record there, or a high watermark at or below it, means the topic was re-created, e.g.
by a memory-only broker restart, and the partition restarts from the beginning). The high watermark is taken from
fetch responses: tansu v0.6.0-510f3e2 answers ListOffsets(latest) with a stale, too low offset (seen: 1760 for a
partition whose fetches report 2861), so end offsets from ListOffsets are never used.

Batches come from ``getmany`` (up to ``max_records``), their records decoded by ``fetch.py`` (offset, value and
timestamp only); the processor reports gaps (store behind the consumer, e.g. after a wipe) and the consumer seeks
back. Kafka commits mirror the Redis offsets for lag tooling only; they are never read back. Errors never end the
loop: it backs off and retries.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from services.features.engine import EngineBase
from services.features.fetch import lean_options
from shared.logging import get_logger

log = get_logger("stableseg.features.consumer")


class _Seeker(ConsumerRebalanceListener):
    def __init__(self, loop: SalesConsumer) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.loop.assigned -= {tp.partition for tp in revoked if tp.topic == self.loop.topic}
        log.info("features.partitions_revoked", partitions=sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.loop.position(set(assigned))


class SalesConsumer(EngineBase):
    """The aiokafka engine (see ``EngineBase`` for the surface)."""

    engine = "aiokafka"

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self.consumer: AIOKafkaConsumer | None = None
        self._last_commit = 0.0

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, client_id="stableseg-features",
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=self.max_records,
            max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024,
            max_poll_interval_ms=self.timings.max_poll_interval_ms, **self.timeouts.aiokafka(), **lean_options(),
            **self.security,
        )

    async def position(self, assigned: set[TopicPartition]) -> None:
        """Seek newly assigned partitions to the offsets Redis holds (``EngineBase._reposition``)."""
        mine = {tp.partition for tp in assigned if tp.topic == self.topic}
        self.assigned = mine
        self.joined = True  # a member of the group (possibly without partitions: more workers than partitions)
        if mine:
            log.info("features.partitions_assigned", partitions=sorted(mine))
            await self._reposition(mine)

    async def _session(self) -> None:
        self.consumer = self._new_consumer()
        self._restart = False
        try:
            await self.consumer.start()
            self.consumer.subscribe([self.topic], listener=_Seeker(self))
            await self.processor.recompute_pending()
            await self._loop()
        finally:
            if self.consumer is not None:
                await self._leave(self.consumer.stop())
            self.consumer = None

    # --- the primitives EngineBase uses ---------------------------------------------------------------------------
    def _tp(self, partition: int) -> TopicPartition:
        return TopicPartition(self.topic, partition)

    async def _beginnings(self, partitions: set[int]) -> dict[int, int]:
        assert self.consumer is not None
        begin = await self.consumer.beginning_offsets([self._tp(p) for p in partitions])
        return {tp.partition: offset for tp, offset in begin.items()}

    async def _seek(self, partition: int, offset: int) -> None:
        assert self.consumer is not None
        self.consumer.seek(self._tp(partition), offset)
        self.next_offsets[partition] = offset

    def _highwater(self, partition: int) -> int | None:
        assert self.consumer is not None
        return self.consumer.highwater(self._tp(partition))

    def _owned(self) -> set[int]:
        """Our partitions aiokafka has assigned right now (``self.assigned`` lags during a rebalance, and
        ``highwater`` asserts on a partition that is not assigned)."""
        consumer = self.consumer
        if consumer is None:
            return set()
        return self.assigned & {tp.partition for tp in consumer.assignment() if tp.topic == self.topic}

    # --- the record flow ------------------------------------------------------------------------------------------
    async def _loop(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        self._quiet_since = time.monotonic()
        in_flight: asyncio.Task[Any] | None = None  # the previous batch's commit, overlapped with this fetch/parse
        try:
            while not self._stop.is_set() and not self._restart:
                fetched = await self._fetch(consumer)
                if self._stop.is_set() or self._restart:
                    break  # a new log is suspected (or we stop): the next consumer re-positions from Redis
                batches = {tp.partition: recs for tp, recs in fetched.items() if recs and tp.topic == self.topic}
                below = self._fetched_below(batches)
                if below:
                    if in_flight is not None:  # Redis must hold its offsets before we position from them
                        await self._land(in_flight, batches)
                        in_flight = None
                    await self._reposition_below(batches, below)
                gone = self._new_logs()
                if gone and in_flight is not None:  # its offsets must land before the partition's are forgotten
                    await self._land(in_flight, batches)
                    in_flight = None
                if self.verify or gone:
                    await self._verify(batches, gone)
                if not batches:
                    if in_flight is not None:
                        await self._finish(in_flight)
                        in_flight = None
                    await self._idle()
                    continue
                prepared = self.processor.prepare(batches)
                if in_flight is not None:
                    moved = await self._finish(in_flight)
                    prepared.drop(moved)
                    batches = {p: recs for p, recs in batches.items() if p not in moved}
                for partition, records in batches.items():
                    self.next_offsets[partition] = records[-1].offset + 1
                in_flight = asyncio.create_task(self._timed(prepared))
        finally:
            if in_flight is not None:
                await self._finish(in_flight)

    async def _fetch(self, consumer: AIOKafkaConsumer) -> dict[Any, list[Any]]:
        """``getmany``, bounded: while a reassignment is in progress it waits for the assignment without a limit (an
        old consumer was seen silent for over a minute after a broker restart), and ``restart()`` / ``stop()``
        must still be noticed."""
        poll = self.timings.poll_seconds
        try:
            return await asyncio.wait_for(consumer.getmany(timeout_ms=int(poll * 1000), max_records=self.max_records),
                                          poll + self.timings.fetch_grace_seconds)
        except TimeoutError:
            return {}

    def _fetched_below(self, batches: dict[int, list[Any]]) -> set[int]:
        """Partitions whose fetch starts below our position: aiokafka reset the position to the log's beginning
        (``auto_offset_reset``; tansu was seen to answer an out-of-range error for a fetch while a producer appends),
        or the log was re-created below it."""
        return {p for p, records in batches.items() if records[0].offset < self.next_offsets.get(p, records[0].offset)}

    async def _reposition_below(self, batches: dict[int, list[Any]], below: set[int]) -> None:
        """Seek ``below`` to the record Redis holds as applied (``EngineBase._reposition``, after the commit in flight
        landed): the fingerprint check that follows tells the log we applied (carry on, nothing applied twice) from a
        new one (read from its beginning)."""
        first = {p: batches.pop(p)[0].offset for p in sorted(below) if p in batches}
        log.warning("features.fetched_below_position", first=first,
                    positions={p: self.next_offsets[p] for p in sorted(below)}, engine=self.engine)
        await self._reposition(below)

    def _new_logs(self) -> set[int]:
        """Partitions whose log ends below our position: it was re-created below it (see ``_verify``). A fetch from
        below our position is ``_fetched_below``'s."""
        gone = set()
        for partition in self._owned():
            position, high = self.next_offsets.get(partition), self._highwater(partition)
            if position is not None and high is not None and high < position:
                gone.add(partition)
        return gone

    async def _timed(self, prepared: Any) -> tuple[Any, float]:
        started = time.perf_counter()
        outcome = await self.processor.commit(prepared)
        return outcome, time.perf_counter() - started

    async def _land(self, task: asyncio.Task[Any], batches: dict[int, list[Any]]) -> None:
        """``_finish`` the commit in flight; the partitions it re-positioned drop their fetch (made before the seek)."""
        for partition in await self._finish(task):
            batches.pop(partition, None)

    async def _finish(self, task: asyncio.Task[Any]) -> set[int]:
        """Wait for a commit; apply the seeks it asked for; return the partitions re-positioned."""
        outcome, seconds = await task
        moved = await self._apply_seeks(outcome)
        self._observe(outcome, seconds)
        await self._commit()
        return moved

    async def _verify(self, batches: dict[int, list[Any]], gone: set[int]) -> None:
        """Not the log we applied, so forget the offset and start from the beginning: ``gone``, a log that ends
        before our position (tansu answers a fetch past the end with no records and the real high watermark; once
        the new log grows past our position the fetches would carry on from there, the records below lost); or,
        resuming at the stored record, a log that ends at it."""
        for partition in sorted((set(self.verify) | gone) & self._owned()):
            high = self._highwater(partition)
            stored = self.verify.get(partition)
            if partition in gone or (partition not in batches and stored and high is not None and high <= stored[0]):
                batches.pop(partition, None)
                await self._restart_partition(partition, high)
            elif partition in batches:
                del self.verify[partition]  # the record itself is checked by APPLY (fingerprint)

    async def _commit(self) -> None:
        """Mirror positions into Kafka at most every ``commit_seconds`` (monitoring only; Redis holds the truth)."""
        if self.consumer is None or time.monotonic() - self._last_commit < self.timings.commit_seconds:
            return
        self._last_commit = time.monotonic()
        offsets = {self._tp(p): o for p, o in self.next_offsets.items() if p in self.assigned}
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            log.debug("features.commit_skipped", error=repr(exc))
