"""The ``sales.monthly`` consumer: an aiokafka group member that keeps its offsets in Redis.

On every assignment it seeks each partition to the record Redis says was applied last (that record comes back
once more and its fingerprint proves the log is the one we applied; a different record, or a high watermark at
or below it, means the topic was re-created, e.g. by a memory-only broker restart, and the partition restarts
from the beginning). With no stored offset it starts at the beginning. The high watermark is taken from fetch
responses: tansu v0.6.0-510f3e2 answers ListOffsets(latest) with a stale, too low offset (seen: 1760 for a
partition whose fetches report 2861), so end offsets from ListOffsets are never used.

Batches come from ``getmany`` (up to ``max_records``); the processor reports
gaps (store behind the consumer, e.g. after a wipe) and the consumer seeks back. Kafka commits mirror the Redis
offsets for lag tooling only; they are never read back. Errors never end the loop: it backs off and retries.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from services.features.lag import track_lag
from services.features.processor import Processor
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


class SalesConsumer:
    """``await run()`` until ``stop()``; ``lag`` is the records behind the high watermarks of our partitions."""

    def __init__(self, bootstrap: str, topic: str, group_id: str, processor: Processor, *, max_records: int = 5000,
                 poll_ms: int = 500, session_timeout_ms: int = 10_000, heartbeat_ms: int = 3000,
                 rebalance_timeout_ms: int = 20_000, metrics: Any = None, security: dict[str, Any] | None = None,
                 ) -> None:
        self.bootstrap, self.topic, self.group_id = bootstrap, topic, group_id
        self.security = security or {}  # kafka_security(settings, "aiokafka")
        self.processor = processor
        self.max_records = max_records
        self.poll_ms = poll_ms
        self.timeouts = {"session_timeout_ms": session_timeout_ms, "heartbeat_interval_ms": heartbeat_ms,
                         "rebalance_timeout_ms": rebalance_timeout_ms}
        self.metrics = metrics
        self.consumer: AIOKafkaConsumer | None = None
        self.next_offsets: dict[int, int] = {}
        self.verify: dict[int, tuple[int, str]] = {}  # partition -> stored (offset, fingerprint) not yet seen again
        self.lag = 0
        self.assigned: set[int] = set()
        self._stop = asyncio.Event()
        self._last_commit = 0.0
        self._restart = False
        self.joined = False

    def stop(self) -> None:
        self._stop.set()
        self.processor.stopping = True

    def restart(self) -> None:
        """Start over with a new consumer (after the broker lost its topics: fresh metadata and group); not ready
        until the new one joined."""
        self._restart = True
        self.joined = False

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, client_id="stableseg-features",
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=self.max_records,
            max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024,
            max_poll_interval_ms=600_000, **self.timeouts, **self.security,
        )

    async def position(self, assigned: set[TopicPartition]) -> None:
        """Seek newly assigned partitions to the offsets Redis holds (see the module docstring)."""
        consumer = self.consumer
        assert consumer is not None
        mine = {tp for tp in assigned if tp.topic == self.topic}
        self.assigned = {tp.partition for tp in mine}
        self.joined = True  # a member of the group (possibly without partitions: more workers than partitions)
        if not mine:
            return
        await self.processor.load_epoch()
        stored = await self.processor.stored_offsets()
        begin = await consumer.beginning_offsets(list(mine))
        for tp in sorted(mine):
            self.processor.floors[tp.partition] = begin[tp]
            offset, fp = stored.get(tp.partition, (None, ""))
            self.verify.pop(tp.partition, None)
            if offset is not None and offset >= begin[tp]:
                self.verify[tp.partition] = (offset, fp)
            target = begin[tp] if offset is None else max(offset, begin[tp])
            consumer.seek(tp, target)
            self.next_offsets[tp.partition] = target
        log.info("features.partitions_assigned", partitions=sorted(self.assigned),
                 positions={tp.partition: self.next_offsets[tp.partition] for tp in mine})

    async def run(self) -> None:
        """Consume until stopped; recreate the consumer after fatal errors (never crash-loop)."""
        backoff = 0.5
        while not self._stop.is_set():
            self.consumer = self._new_consumer()
            self._restart = False
            try:
                await self.consumer.start()
                self.consumer.subscribe([self.topic], listener=_Seeker(self))
                await self.processor.recompute_pending()
                await self._loop()
                backoff = 0.5
            except asyncio.CancelledError:
                if not self._stop.is_set():
                    raise
            except Exception as exc:  # KafkaError, broker gone, ...: log, back off, start over
                log.warning("features.consumer_error", error=repr(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                await self._close()

    async def _close(self) -> None:
        self.joined = False
        if self.consumer is not None:
            try:  # bounded: leaving the group needs the broker, which may be gone (Redis holds the offsets)
                await asyncio.wait_for(self.consumer.stop(), 5 if self._stop.is_set() else 15)
            except Exception as exc:  # stopping a broken consumer must not mask the original problem
                log.debug("features.consumer_stop_error", error=repr(exc))
            self.consumer = None

    async def _loop(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        idle_since = time.monotonic()
        in_flight: asyncio.Task[Any] | None = None  # the previous batch's commit, overlapped with this fetch/parse
        try:
            while not self._stop.is_set() and not self._restart:
                fetched = await self._fetch(consumer)
                if self._stop.is_set() or self._restart:
                    break  # a new log is suspected (or we stop): the next consumer re-positions from Redis
                batches = {tp.partition: recs for tp, recs in fetched.items() if recs and tp.topic == self.topic}
                gone = self._new_logs(batches)
                if gone and in_flight is not None:  # its offsets must land before the partition's are forgotten
                    for partition in await self._finish(in_flight):
                        batches.pop(partition, None)  # re-positioned: fetched before that seek
                    in_flight = None
                if self.verify or gone:
                    await self._verify(batches, gone)
                if not batches:
                    if in_flight is not None:
                        await self._finish(in_flight)
                        in_flight = None
                    self._update_lag()
                    await self.processor.flush_outbox()
                    if time.monotonic() - idle_since > 5:
                        await self.processor.recompute_pending()
                        idle_since = time.monotonic()
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
        try:
            return await asyncio.wait_for(consumer.getmany(timeout_ms=self.poll_ms, max_records=self.max_records),
                                          self.poll_ms / 1000 + 2)
        except TimeoutError:
            return {}

    def _new_logs(self, batches: dict[int, list[Any]]) -> set[int]:
        """Partitions whose log no longer reaches our position: it was re-created below it (see ``_verify``)."""
        consumer = self.consumer
        assert consumer is not None
        gone = set()
        for partition in self._owned():
            position = self.next_offsets.get(partition)
            if position is None:
                continue
            records = batches.get(partition)
            high = consumer.highwater(TopicPartition(self.topic, partition))
            if (records and records[0].offset < position) or (high is not None and high < position):
                gone.add(partition)
        return gone

    async def _timed(self, prepared: Any) -> tuple[Any, float]:
        started = time.perf_counter()
        outcome = await self.processor.commit(prepared)
        return outcome, time.perf_counter() - started

    async def _finish(self, task: asyncio.Task[Any]) -> set[int]:
        """Wait for a commit; apply the seeks it asked for; return the partitions re-positioned."""
        outcome, seconds = await task
        consumer = self.consumer
        assert consumer is not None
        moved = set(outcome.seeks)
        if outcome.reseek_all:
            moved |= self.assigned
            await self.position({TopicPartition(self.topic, p) for p in self.assigned})
        for partition, offset in outcome.seeks.items():
            target = self.processor.floors.get(partition, 0) if offset is None else offset
            consumer.seek(TopicPartition(self.topic, partition), target)
            self.next_offsets[partition] = target
        self._record(outcome, seconds)
        await self._commit()
        return moved

    async def _verify(self, batches: dict[int, list[Any]], gone: set[int]) -> None:
        """Not the log we applied, so forget the offset and start from the beginning: ``gone``, a log that ends
        before our position (tansu answers a fetch past the end with no records and the real high watermark; once
        the new log grows past our position the fetches would carry on from there, the records below lost) or a
        fetch that starts below it (Kafka resets an out-of-range fetch; aiokafka discards fetches that do not match
        the position, so nothing else does that); or, resuming at the stored record, a log that ends at it."""
        consumer = self.consumer
        assert consumer is not None
        for partition in sorted((set(self.verify) | gone) & self._owned()):
            high = consumer.highwater(TopicPartition(self.topic, partition))
            stored = self.verify.get(partition)
            if partition in gone or (partition not in batches and stored and high is not None and high <= stored[0]):
                batches.pop(partition, None)
                self.verify.pop(partition, None)
                await self._restart_partition(partition, high)
            elif partition in batches:
                del self.verify[partition]  # the record itself is checked by APPLY (fingerprint)

    async def _restart_partition(self, partition: int, high: int | None) -> None:
        consumer = self.consumer
        assert consumer is not None
        tp = TopicPartition(self.topic, partition)
        stored = await self.processor.forget_log(partition)
        log.warning("features.log_reset", partition=partition, stored=stored, high_watermark=high)
        floor = (await consumer.beginning_offsets([tp]))[tp]
        self.processor.floors[partition] = floor
        consumer.seek(tp, floor)
        self.next_offsets[partition] = floor

    def _record(self, outcome: Any, seconds: float) -> None:
        self._update_lag()
        if self.metrics is not None:
            self.metrics.observe(outcome, seconds, self.lag)

    def _owned(self) -> set[int]:
        """Our partitions aiokafka has assigned right now (``self.assigned`` lags during a rebalance, and
        ``highwater`` asserts on a partition that is not assigned)."""
        consumer = self.consumer
        if consumer is None:
            return set()
        return self.assigned & {tp.partition for tp in consumer.assignment() if tp.topic == self.topic}

    def _update_lag(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        highs = {partition: consumer.highwater(TopicPartition(self.topic, partition)) for partition in self._owned()}
        self.lag = track_lag(self.processor, self.metrics, highs, self.next_offsets)

    async def _commit(self) -> None:
        """Mirror positions into Kafka at most every 2 s (monitoring only; Redis holds the truth)."""
        if self.consumer is None or time.monotonic() - self._last_commit < 2:
            return
        self._last_commit = time.monotonic()
        offsets = {TopicPartition(self.topic, p): o for p, o in self.next_offsets.items() if p in self.assigned}
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            log.debug("features.commit_skipped", error=repr(exc))
