"""Prometheus metrics of the features service (base units, ``_total`` counters, no per-retailer labels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from shared.service_metrics import ServiceMetrics, metric


@dataclass(frozen=True)
class FeaturesMetrics(ServiceMetrics):
    """Registered on the HTTP app's own registry (``app.state.metrics_registry``)."""

    records: Counter = metric(
        "stableseg_features_records_total",
        "sales.monthly records: applied (offset advanced), rejected (sent to sales.rejected), duplicate", ["outcome"],
    )
    recomputed: Counter = metric("stableseg_features_recomputed_shops_total", "shop feature recomputations")
    batch_seconds: Histogram = metric("stableseg_features_batch_seconds", "time to apply one consumed batch",
                                      buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
    lag: Gauge = metric("stableseg_features_consumer_lag", "records behind the high watermark")
    redis_up: Gauge = metric("stableseg_features_redis_up", "1 when the last Redis call succeeded")

    def prepare(self) -> None:
        self.redis_up.set(1)

    def observe(self, outcome: Any, seconds: float, lag: int) -> None:
        self.records.labels("applied").inc(outcome.applied)  # offsets advanced (rejected records included)
        self.records.labels("rejected").inc(outcome.rejected)
        self.records.labels("duplicate").inc(outcome.duplicates)
        self.recomputed.inc(outcome.recomputed)
        self.batch_seconds.observe(seconds)
        self.lag.set(lag)
