"""The ``sales.monthly`` consumer as a faust-streaming app (``STABLESEG_FEATURES_ENGINE=faust``).

The same ``Processor`` as the aiokafka engine (``consumer.py``) applies the batches; this module only feeds it.
One faust ``App`` (id = the consumer group) with ``processing_guarantee='at_least_once'``, raw key and value
serializers (records are parsed by ``parsing.py``, not by faust), no tables, no web server and no leader topic
(``topic_disable_leader``): faust creates no internal topic for it. One agent, ``concurrency=1``, reads batches
with ``stream.noack_take(max_records, within)`` and groups them by partition.

Offsets and acknowledgements (the correctness argument):

* Kafka-committed offsets never exceed what Redis has applied. faust commits, per partition, one past the highest
  contiguous acknowledged offset. ``stream.take()`` acks a batch when the agent asks for the next one, and its
  ``finally`` acks it even when the agent's body was cancelled half way, so ``noack_take`` is used instead and an
  event is acked only after ``Processor.commit`` returned for its batch, i.e. after the APPLY script stored the
  partition's offset in Redis in the same transaction as the effects. Events of a partition the processor asked to
  re-position (gap, changed log, new epoch), events dropped while positioning, and every event of a batch that
  raised are never acked. faust can also fill "gaps" (offset jumps it saw while fetching) into the committed range;
  a jump caused by records fetched before one of our seeks would let it commit past Redis, so the gap record of a
  partition is cleared whenever this engine seeks it and whenever it takes records of it.
* Positioning: faust seeks every assigned partition to its Kafka-committed offset at the END of a rebalance
  (``perform_seek`` in the recovery service, after the ``on_partitions_assigned`` signal, so a seek made in that
  signal would be undone). The signal only marks the partitions (their events are dropped, not acked, until
  positioned); once ``app.rebalancing`` is false again (after faust's own seek) the engine seeks each one to the
  offset Redis holds with the aiokafka engine's code (``engine.EngineBase``): the stored record itself comes back
  and its fingerprint proves the log is the one we applied (a different record, or a high watermark at or below
  it, means the topic was re-created, e.g. by a memory-only broker restart; the partition forgets its offset and
  restarts from its beginning).
* A new log under the running app (a memory-only broker restarted and its topics are back, re-created by anyone):
  the consumer keeps its position, and once the new log grows past it the fetches carry on from there, as if the
  records below were applied (lost). Kafka resets an out-of-range fetch to the beginning instead, and faust drops
  the records below its read offset, with the same effect. The sign both leave is a high watermark below our
  position (a log never shrinks), so every batch and housekeeping round restarts such partitions from their
  beginning (offset forgotten, that batch's events dropped), as the aiokafka engine does on every fetch. Once
  ``restart()`` was called (the worker saw the topics go) nothing more is taken: the next app re-positions.
* Only consecutive offsets are taken: per partition, a batch takes the run that starts exactly at the next offset
  to take (the seek target, then one past the last record taken). Records below it were fetched again (duplicates);
  a record above it is a hole. Holes are real here: events fetched before a seek stay in faust's stream buffer,
  and faust drops records below the last offset it read, which those stale events raise after our (backward)
  seek, so part of the re-fetched range can vanish (seen after a broker restart: 0..16 then 37..). The records
  after a hole are not taken (APPLY checks only where a run starts: taking them would skip the hole for good) and
  the partition is sought to the hole again once the batch is done.
* Exceptions never escape the agent (faust#527: an exception skips the message's offset and stops the agent):
  a failed batch is logged, nothing of it is acked, and every assigned partition is re-positioned from Redis so the
  records come again. Records that cannot be parsed are not exceptions: the processor sends them to
  ``sales.rejected`` and advances the offset.

Hence at-least-once delivery from Kafka plus the idempotent, offset-guarded APPLY: no loss and no double apply.
``stream_wait_empty`` is off: a rebalance does not wait for the batch in flight (its effects and offsets are
atomic in Redis, and a partition's new owner skips what is already applied).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import faust
from faust.types import TP

from services.features.engine import EngineBase
from services.features.processor import Outcome, Record
from shared.logging import get_logger

log = get_logger("stableseg.features.faust")
for _name in ("faust", "mode", "aiokafka"):
    logging.getLogger(_name).setLevel(logging.WARNING)


Taken = tuple[dict[int, list[Record]], dict[int, list[Any]], set[int]]  # records, their events, holes


class FaustSalesConsumer(EngineBase):
    """The faust engine, same surface as ``SalesConsumer`` (see ``EngineBase``)."""

    engine = "faust"

    def __init__(self, *args: Any, datadir: Path | None = None, **options: Any) -> None:
        super().__init__(*args, **options)
        self.datadir = datadir or Path(".stableseg") / "faust"
        self.app: faust.App | None = None
        self.unpositioned: set[int] = set()  # assigned, not yet seeked to the Redis offset
        self._lock = asyncio.Lock()  # batches, positioning and housekeeping one at a time

    # --- the faust app ------------------------------------------------------------------------------------------
    def _new_app(self) -> faust.App:
        self.datadir.mkdir(parents=True, exist_ok=True)
        app = faust.App(
            self.group_id, broker=f"kafka://{self.bootstrap}", store="memory://", web_enabled=False,
            autodiscover=False, datadir=str(self.datadir), processing_guarantee="at_least_once",
            topic_disable_leader=True, stream_wait_empty=False, consumer_auto_offset_reset="earliest",
            key_serializer="raw", value_serializer="raw", broker_client_id="stableseg-features",
            broker_commit_interval=self.timings.commit_seconds, broker_max_poll_records=self.max_records,
            stream_buffer_maxsize=max(4096, 2 * self.max_records), consumer_max_fetch_size=4 * 1024 * 1024,
            **self.timeouts.faust(), **self.security,
        )
        topic = app.topic(self.topic, key_serializer="raw", value_serializer="raw")

        async def consume(stream: Any) -> None:
            async for events in stream.noack_take(self.max_records, within=self.timings.poll_seconds):
                try:
                    async with self._lock:
                        acks = await self._batch(events)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # faust#527: never let it escape; nothing acked, re-read from Redis offsets
                    log.exception("features.batch_failed", error=repr(exc), records=len(events))
                    self.unpositioned |= self.assigned
                    continue
                for event in acks:
                    await stream.ack(event)

        app.agent(topic, name="stableseg-features-sales", concurrency=1)(consume)

        @app.on_partitions_assigned.connect
        async def on_assigned(sender: Any, assigned: set[TP], **_: Any) -> None:
            mine = {tp.partition for tp in assigned if tp.topic == self.topic}
            self.assigned = mine
            self.unpositioned = set(mine)  # faust seeks to committed offsets after this signal: position later
            self.joined = True
            log.info("features.partitions_assigned", partitions=sorted(mine), engine="faust")

        @app.on_partitions_revoked.connect
        async def on_revoked(sender: Any, revoked: set[TP], **_: Any) -> None:
            log.info("features.partitions_revoked", partitions=sorted(tp.partition for tp in revoked), engine="faust")

        return app

    async def _session(self) -> None:
        self._restart = False
        self.app = app = self._new_app()
        keeper = None
        try:
            await self.processor.recompute_pending()
            await app.start()
            keeper = asyncio.create_task(self._housekeeping(), name="features-faust-housekeeping")
            while not (self._stop.is_set() or self._restart or app.crashed or app.should_stop):
                await asyncio.sleep(self.timings.poll_seconds)
            if app.crashed:
                raise RuntimeError(f"faust app crashed: {app.crash_reason!r}")
        finally:
            if keeper is not None:
                keeper.cancel()
            self.assigned, self.unpositioned = set(), set()
            self.verify.clear()
            await self._leave(app.stop())  # nothing depends on faust's last commit
            self.app = None

    # --- positioning --------------------------------------------------------------------------------------------
    def _tp(self, partition: int) -> TP:
        return TP(self.topic, partition)

    async def _seek(self, partition: int, offset: int) -> None:
        """Seek in faust's consumer thread (``seek_wait``): its plain ``seek`` calls aiokafka from this thread while
        the consumer thread drains the fetched records (seen: ``KeyError`` in ``fetched_records``, the app crashed)."""
        app = self.app
        assert app is not None
        await app.consumer.seek_wait({self._tp(partition): offset})
        self._forget_gaps(partition)
        self.next_offsets[partition] = offset

    def _forget_gaps(self, partition: int) -> None:
        """See the module docstring: faust's gap record must not carry a commit past the Redis offset."""
        gaps = getattr(self.app.consumer, "_gap", None) if self.app is not None else None
        if gaps is not None:
            gaps.pop(self._tp(partition), None)

    async def _beginnings(self, partitions: set[int]) -> dict[int, int]:
        app = self.app
        assert app is not None
        begin = await app.consumer.earliest_offsets(*[self._tp(p) for p in partitions])
        return {p: begin.get(self._tp(p)) or 0 for p in partitions}

    async def _reposition(self, partitions: set[int]) -> None:
        """``EngineBase._reposition``; the partitions are positioned from now on."""
        self.unpositioned -= partitions
        await super()._reposition(partitions)

    async def _maybe_position(self) -> None:
        if self.unpositioned and self.app is not None and not self.app.rebalancing:
            await self._reposition(set(self.unpositioned))

    # --- batches ------------------------------------------------------------------------------------------------
    async def _batch(self, events: list[Any]) -> list[Any]:
        """Filter, process and return the events that may be acked now."""
        if self._restart or self._stop.is_set():
            return []  # a new log is suspected (or we stop): nothing more from this app, the next one re-positions
        await self._maybe_position()
        restarted = await self._restart_new_logs()
        batches, taken, holes = self._take(events, restarted)
        for partition in list(self.verify):
            if partition in batches:
                del self.verify[partition]  # its first record is the stored one: APPLY checks the fingerprint
        outcome, seconds = Outcome(), 0.0
        if batches:
            started = time.perf_counter()
            outcome = await self.processor.handle(batches)
            seconds = time.perf_counter() - started
            self._quiet_since = time.monotonic()
        moved = await self._apply_seeks(outcome)
        acks: list[Any] = []
        for partition, records in batches.items():
            if partition not in moved:
                self.next_offsets[partition] = records[-1].offset + 1
                self._forget_gaps(partition)
                acks.extend(taken[partition])
        for partition in sorted(holes - moved):  # faust drops what is below its read offset: seek to the hole
            log.info("features.refetch_hole", partition=partition, offset=self.next_offsets[partition])
            await self._seek(partition, self.next_offsets[partition])
        if batches:
            self._observe(outcome, seconds)
        else:
            self._update_lag()
        return acks

    def _take(self, events: list[Any], skip: set[int]) -> Taken:
        """Per partition, the run of consecutive offsets starting at the next offset to take; plus the partitions
        that saw a record beyond their run (a hole: records in between were fetched before a seek or dropped by
        faust below its read offset, so they must be fetched again; taking the record after a hole would skip
        them for good, the offset-guarded APPLY only checks where a run starts)."""
        batches: dict[int, list[Record]] = {}
        taken: dict[int, list[Any]] = {}
        want = {p: o for p, o in self.next_offsets.items() if p in self.assigned}
        ahead: dict[int, int] = {}
        for event in events:
            message = event.message
            partition, offset = message.partition, message.offset
            if (message.topic != self.topic or partition not in self.assigned or partition in self.unpositioned
                    or partition in skip):
                continue  # revoked, fetched from faust's position before ours, or from a log gone: dropped, not acked
            wanted = want.get(partition, offset)
            if offset != wanted:
                if offset > wanted:
                    ahead[partition] = max(ahead.get(partition, offset), offset)
                continue  # below: fetched again after a seek (a duplicate); above: a hole
            want[partition] = offset + 1
            batches.setdefault(partition, []).append(Record(offset, message.value, round(message.timestamp * 1000)))
            taken.setdefault(partition, []).append(event)
        return batches, taken, {p for p, o in ahead.items() if o >= want[p]}

    # --- idle duties (the agent only runs when records arrive) ----------------------------------------------------
    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.timings.poll_seconds)
            try:
                async with self._lock:
                    await self._maybe_position()
                    await self._restart_new_logs()
                    await self._idle()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("features.housekeeping_error", error=repr(exc), engine="faust")

    async def _restart_new_logs(self) -> set[int]:
        """Restart the positioned partitions whose log is not the one we applied (see the module docstring)."""
        hit: set[int] = set()
        for partition in sorted(self.assigned - self.unpositioned):
            high, position = self._highwater(partition), self.next_offsets.get(partition)
            stored = self.verify.get(partition)
            if high is not None and position is not None and (high < position or (stored and high <= stored[0])):
                await self._restart_partition(partition, high)
                hit.add(partition)
        return hit

    def _highwater(self, partition: int) -> int | None:
        app = self.app
        if app is None:
            return None
        try:
            return app.consumer.highwater(self._tp(partition))
        except Exception:  # not assigned (any more) or no fetch yet
            return None
