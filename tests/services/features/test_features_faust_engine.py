"""The faust engine's own logic without a broker: which events it hands to the processor and which it acks.

The invariant under test: an event is acked (so faust may commit its offset) only after the processor committed the
batch that holds it, and never when its partition was re-positioned or the batch failed; only consecutive offsets
are handed over. The end-to-end behaviour (real broker, real Redis) is in ``test_features_service.py``,
parametrised over both engines.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from services.features.faust_engine import FaustSalesConsumer
from services.features.processor import Outcome

TOPIC = "sales.monthly"


def _event(partition: int, offset: int, topic: str = TOPIC) -> Any:
    message = SimpleNamespace(topic=topic, partition=partition, offset=offset, value=b"{}", timestamp=1_700_000_000.123)
    return SimpleNamespace(message=message)


@dataclass
class FakeProcessor:
    outcomes: list[Outcome] = field(default_factory=list)
    seen: list[dict[int, list[int]]] = field(default_factory=list)
    floors: dict[int, int] = field(default_factory=dict)
    stored: dict[int, tuple[int, str]] = field(default_factory=dict)
    highwaters: dict[int, int] = field(default_factory=dict)
    stopping: bool = False

    async def flush_outbox(self) -> int:
        return 0

    async def handle(self, batches: dict[int, list[Any]]) -> Outcome:
        self.seen.append({p: [r.offset for r in records] for p, records in batches.items()})
        for records in batches.values():
            assert all(r.timestamp == 1_700_000_000_123 for r in records)  # back to integer milliseconds
        return self.outcomes.pop(0) if self.outcomes else Outcome()

    async def load_epoch(self) -> int:
        return 0

    async def stored_offsets(self) -> dict[int, tuple[int, str]]:
        return self.stored

    async def forget_log(self, partition: int) -> tuple[int, str] | None:
        return self.stored.pop(partition, None)


class FakeConsumer:
    def __init__(self) -> None:
        self.seeks: list[tuple[int, int]] = []
        self._gap: dict[TP, object] = {}
        self.highs: dict[int, int] = {}

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks.extend((tp.partition, offset) for tp, offset in partitions.items())

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, 0)

    def highwater(self, tp: TP) -> int:
        return self.highs.get(tp.partition, 100)


def _engine(processor: FakeProcessor, assigned: set[int]) -> tuple[FaustSalesConsumer, FakeConsumer]:
    engine = FaustSalesConsumer("127.0.0.1:1", TOPIC, "g", processor)  # type: ignore[arg-type]
    consumer = FakeConsumer()
    engine.app = SimpleNamespace(consumer=consumer, rebalancing=False)  # type: ignore[assignment]
    engine.assigned = assigned
    return engine, consumer


def test_a_committed_batch_is_acked_and_a_repositioned_partition_is_not() -> None:
    processor = FakeProcessor(outcomes=[Outcome(seeks={1: 7})])  # partition 1: the store is behind (gap)
    engine, consumer = _engine(processor, {0, 1})
    events = [_event(0, 0), _event(1, 9), _event(0, 1), _event(1, 10)]
    acked = asyncio.run(engine._batch(events))
    assert processor.seen == [{0: [0, 1], 1: [9, 10]}]
    assert [(e.message.partition, e.message.offset) for e in acked] == [(0, 0), (0, 1)]
    assert consumer.seeks == [(1, 7)] and engine.next_offsets == {0: 2, 1: 7}


def test_after_a_seek_only_the_wanted_record_and_its_successors_go_through() -> None:
    processor = FakeProcessor(stored={0: (5, "fp")})
    engine, consumer = _engine(processor, {0})
    engine.unpositioned = {0}
    # faust's own position (committed offset 3) delivered 3..4 before our seek to the stored record 5
    acked = asyncio.run(engine._batch([_event(0, 3), _event(0, 4), _event(0, 5), _event(0, 6)]))
    assert consumer.seeks == [(0, 5)]
    assert processor.seen == [{0: [5, 6]}] and [e.message.offset for e in acked] == [5, 6]
    # the same records fetched again after the seek are duplicates: not handed over, not acked
    acked = asyncio.run(engine._batch([_event(0, 5), _event(0, 6), _event(0, 7)]))
    assert processor.seen[-1] == {0: [7]} and [e.message.offset for e in acked] == [7]


def test_records_of_unassigned_or_unpositioned_partitions_are_dropped() -> None:
    processor = FakeProcessor()
    engine, _ = _engine(processor, {0, 1})
    engine.app.rebalancing = True  # type: ignore[union-attr]
    engine.unpositioned = {1}
    acked = asyncio.run(engine._batch([_event(0, 0), _event(1, 0), _event(2, 0), _event(0, 1, topic="other")]))
    assert processor.seen == [{0: [0]}] and [e.message.partition for e in acked] == [0]


def test_a_record_ahead_of_the_wanted_one_triggers_another_seek() -> None:
    engine, consumer = _engine(FakeProcessor(), {0})
    engine.next_offsets = {0: 2}
    assert asyncio.run(engine._batch([_event(0, 40), _event(0, 41)])) == []
    assert consumer.seeks == [(0, 2)]  # faust would drop the re-fetched 2.. below its read offset 41 otherwise


def test_a_hole_in_a_partition_stops_its_run_and_seeks_back_to_the_hole() -> None:
    """Seen after a broker restart: events fetched before a backward seek raise faust's read offset, so part of
    the re-fetched range never arrives (0..2 then 6..): only the consecutive run is taken, then the hole again."""
    processor = FakeProcessor()
    engine, consumer = _engine(processor, {0, 1})
    engine.next_offsets = {0: 0, 1: 5}
    events = [_event(0, 0), _event(0, 1), _event(0, 2), _event(0, 6), _event(0, 7), _event(1, 5), _event(1, 6)]
    acked = asyncio.run(engine._batch(events))
    assert processor.seen == [{0: [0, 1, 2], 1: [5, 6]}]
    assert [(e.message.partition, e.message.offset) for e in acked] == [(0, 0), (0, 1), (0, 2), (1, 5), (1, 6)]
    assert consumer.seeks == [(0, 3)] and engine.next_offsets == {0: 3, 1: 7}
    # the re-fetched hole fills the run; what was beyond it before is taken in order, nothing twice
    acked = asyncio.run(engine._batch([_event(0, 2), _event(0, 3), _event(0, 4), _event(0, 5), _event(0, 6),
                                       _event(0, 7)]))
    assert processor.seen[-1] == {0: [3, 4, 5, 6, 7]} and consumer.seeks == [(0, 3)]


def test_a_hole_that_the_same_batch_fills_needs_no_seek() -> None:
    processor = FakeProcessor()
    engine, consumer = _engine(processor, {0})
    engine.next_offsets = {0: 0}
    asyncio.run(engine._batch([_event(0, 0), _event(0, 5), _event(0, 1), _event(0, 2), _event(0, 3), _event(0, 4),
                               _event(0, 5)]))
    assert processor.seen == [{0: [0, 1, 2, 3, 4, 5]}] and consumer.seeks == [] and engine.next_offsets == {0: 6}


def test_a_new_epoch_repositions_every_partition_and_acks_nothing() -> None:
    processor = FakeProcessor(outcomes=[Outcome(reseek_all=True)])
    engine, consumer = _engine(processor, {0, 1})
    assert asyncio.run(engine._batch([_event(0, 3), _event(1, 8)])) == []
    assert sorted(consumer.seeks) == [(0, 0), (1, 0)]  # no stored offsets in the new epoch: from the beginning


def test_a_log_that_ends_below_the_position_restarts_from_its_beginning() -> None:
    """A memory-only broker restarted under the running app: the new log ends below our position (high watermark
    3 < 7); once it grows past 7 faust would hand over 7, 8 as the continuation: they must not be taken."""
    processor = FakeProcessor(stored={0: (6, "fp"), 1: (3, "fp")})
    engine, consumer = _engine(processor, {0, 1})
    engine.next_offsets = {0: 7, 1: 4}
    consumer.highs = {0: 3, 1: 100}
    acked = asyncio.run(engine._batch([_event(0, 7), _event(0, 8), _event(1, 4)]))
    assert processor.seen == [{1: [4]}] and [e.message.partition for e in acked] == [1]
    assert consumer.seeks == [(0, 0)] and processor.stored == {1: (3, "fp")}  # offset forgotten, from the start
    consumer.highs = {0: 9, 1: 100}
    asyncio.run(engine._batch([_event(0, 0), _event(0, 1)]))
    assert processor.seen[-1] == {0: [0, 1]}


def test_nothing_is_taken_once_a_restart_is_asked() -> None:
    processor = FakeProcessor()
    engine, _ = _engine(processor, {0})
    engine.restart()
    assert asyncio.run(engine._batch([_event(0, 0)])) == [] and processor.seen == [] and not engine.joined
