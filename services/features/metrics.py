"""Prometheus metrics of the features service (base units, ``_total`` counters, no per-retailer labels)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class FeaturesMetrics:
    """Registered on the HTTP app's own registry (``app.state.metrics_registry``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "stableseg_features_records_total",
            "sales.monthly records: applied (offset advanced), rejected (sent to sales.rejected), duplicate",
            ["outcome"], registry=registry,
        )
        self.recomputed = Counter(
            "stableseg_features_recomputed_shops_total", "shop feature recomputations", registry=registry
        )
        self.batch_seconds = Histogram(
            "stableseg_features_batch_seconds", "time to apply one consumed batch", registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.lag = Gauge("stableseg_features_consumer_lag", "records behind the high watermark", registry=registry)
        self.redis_up = Gauge("stableseg_features_redis_up", "1 when the last Redis call succeeded", registry=registry)
        self.redis_up.set(1)

    def observe(self, outcome: Any, seconds: float, lag: int) -> None:
        self.records.labels("applied").inc(outcome.applied)  # offsets advanced (rejected records included)
        self.records.labels("rejected").inc(outcome.rejected)
        self.records.labels("duplicate").inc(outcome.duplicates)
        self.recomputed.inc(outcome.recomputed)
        self.batch_seconds.observe(seconds)
        self.lag.set(lag)
