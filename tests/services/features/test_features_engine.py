"""``EngineBase.run``, the loop both features engines share: a failed session is followed by a new one after a
doubling backoff (capped), a session that ends without an error (a ``restart()``) resets the backoff, and a failure
while stopping ends the loop without raising."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from services.features.engine import ConsumerTimings, EngineBase


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


def test_sessions_restart_with_a_capped_doubling_backoff_that_a_clean_end_resets() -> None:
    engine = Scripted()
    asyncio.run(asyncio.wait_for(engine.run(), 10))
    gaps = [b - a for a, b in zip(engine.starts, engine.starts[1:], strict=False)]
    assert len(engine.starts) == 5 and engine.processor.stopping
    assert 0.2 <= gaps[0] < 0.4 <= gaps[1] and 0.4 <= gaps[2] < 0.75  # 0.2, 0.4, then capped at 0.4 (not 0.8)
    assert gaps[3] < 0.2  # after a clean end: a new session at once, the backoff starts again
