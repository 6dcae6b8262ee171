"""Consumer lag, shared by both features engines (aiokafka and faust)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def track_lag(processor: Any, metrics: Any, highs: Mapping[int, int | None], next_offsets: Mapping[int, int]) -> int:
    """The records behind the high watermarks ``highs`` (partition -> watermark, ``None`` when not known yet):
    each known watermark is kept in ``processor.highwaters`` and the lag is set on the metrics' gauge."""
    lag = 0
    for partition, high in highs.items():
        if high is not None:
            lag += max(0, high - next_offsets.get(partition, high))
            processor.highwaters[partition] = high
    if metrics is not None:
        metrics.lag.set(lag)
    return lag
