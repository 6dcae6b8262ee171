"""The assigner's Prometheus metrics (base units, ``_total`` counters, no per-retailer labels)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class AssignerMetrics:
    relabels: Counter
    relabel_seconds: Histogram
    refusals: Counter
    changes: Counter
    online_seconds: Histogram
    online_retailers: Counter
    serving_version: Gauge
    events_skipped: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> AssignerMetrics:
        return cls(
            relabels=Counter("stableseg_assigner_relabels_total", "Model versions applied to every retailer",
                             ["trigger"], registry=registry),
            relabel_seconds=Histogram("stableseg_assigner_relabel_seconds", "Duration of one relabel",
                                      buckets=(0.5, 1, 2, 5, 10, 20, 40, 80, 160), registry=registry),
            refusals=Counter("stableseg_assigner_model_refusals_total", "Model versions refused (e.g. checksum)",
                             registry=registry),
            changes=Counter("stableseg_assigner_segment_changes_total", "segments.changes events published",
                            ["reason"], registry=registry),
            online_seconds=Histogram("stableseg_assigner_online_batch_seconds",
                                     "Online assignment of one batch of features.updated events",
                                     buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=registry),
            online_retailers=Counter("stableseg_assigner_online_retailers_total",
                                     "Retailers assigned online after a feature update", registry=registry),
            serving_version=Gauge("stableseg_assigner_serving_model_version", "Model version serving segments",
                                  registry=registry),
            events_skipped=Counter("stableseg_assigner_events_skipped_total", "Unreadable or foreign events skipped",
                                   ["topic"], registry=registry),
        )
