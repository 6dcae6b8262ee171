"""``EngineBase.run``, the loop both features engines share: a failed session is followed by a new one after a
doubling backoff (capped), a session that ends without an error (a ``restart()``) resets the backoff, and a failure
while stopping ends the loop without raising. And the aiokafka engine's check of a fetch from below its position."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from services.features.consumer import SalesConsumer
from services.features.engine import ConsumerTimings, EngineBase
from services.features.parsing import fingerprint
from services.features.processor import Record


class Scripted(EngineBase):
    """Sessions that fail, fail, fail, end (restart), then fail while stopping."""

    engine = "test"

    def __init__(self) -> None:
        timings = ConsumerTimings(retry_min_seconds=0.2, retry_max_seconds=0.4)
        super().__init__("127.0.0.1:1", "t", "g", SimpleNamespace(stopping=False), timings=timings)  # type: ignore[arg-type]
        self.starts: list[float] = []

    async def _session(self) -> None:
        self.starts.append(time.monotonic())
        if len(self.starts) == 4:
            return
        if len(self.starts) == 5:
            self.stop()
        raise RuntimeError("broker gone")

    async def _beginnings(self, partitions: set[int]) -> dict[int, int]:
        return dict.fromkeys(partitions, 0)

    async def _seek(self, partition: int, offset: int) -> None:
        self.next_offsets[partition] = offset

    def _highwater(self, partition: int) -> Any:
        return None

    async def _ends(self, partitions: set[int]) -> dict[int, int]:
        return dict.fromkeys(partitions, 0)


def test_sessions_restart_with_a_capped_doubling_backoff_that_a_clean_end_resets() -> None:
    engine = Scripted()
    asyncio.run(asyncio.wait_for(engine.run(), 10))
    gaps = [b - a for a, b in zip(engine.starts, engine.starts[1:], strict=False)]
    assert len(engine.starts) == 5 and engine.processor.stopping
    assert 0.2 <= gaps[0] < 0.4 <= gaps[1] and 0.4 <= gaps[2] < 0.75  # 0.2, 0.4, then capped at 0.4 (not 0.8)
    assert gaps[3] < 0.2  # after a clean end: a new session at once, the backoff starts again


def _records(first: int, last: int) -> list[Record]:
    return [Record(o, f"v{o}".encode(), 1_000 + o) for o in range(first, last + 1)]


def _below(stored: tuple[int, str], fetched: list[Record]) -> tuple[set[int], dict[int, list[Record]]]:
    """A fetch of partition 0 from below the position 20, with ``stored`` as the record Redis holds as applied."""

    async def stored_offsets() -> dict[int, tuple[int, str]]:
        return {0: stored}

    engine = SalesConsumer("127.0.0.1:1", "t", "g", SimpleNamespace(stopping=False, stored_offsets=stored_offsets))
    engine.next_offsets[0] = 20
    batches = {0: fetched}
    return asyncio.run(engine._same_log(batches, {0})), batches


def test_a_fetch_from_below_the_position_of_the_same_log_keeps_only_what_is_new() -> None:
    applied = _records(15, 15)[0]
    gone, batches = _below((15, fingerprint(applied.value, applied.timestamp)), _records(10, 25))
    assert gone == set() and [r.offset for r in batches[0]] == list(range(20, 26))
    gone, batches = _below((15, fingerprint(applied.value, applied.timestamp)), _records(10, 19))
    assert gone == set() and batches == {}  # nothing new: the partition is dropped from the batch


def test_a_fetch_from_below_the_position_without_the_applied_record_is_a_new_log() -> None:
    gone, batches = _below((15, "other.1"), _records(10, 25))
    assert gone == {0} and len(batches[0]) == 16
    gone, _ = _below((5, "anything"), _records(10, 25))  # the applied record is not in the fetch
    assert gone == {0}
