"""The assigner's Prometheus metrics (base units, ``_total`` counters, no per-retailer labels)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from shared.service_metrics import ServiceMetrics, metric


@dataclass(frozen=True)
class AssignerMetrics(ServiceMetrics):
    relabels: Counter = metric("stableseg_assigner_relabels_total", "Model versions applied to every retailer",
                               ["trigger"])
    relabel_seconds: Histogram = metric("stableseg_assigner_relabel_seconds", "Duration of one relabel",
                                        buckets=(0.5, 1, 2, 5, 10, 20, 40, 80, 160))
    refusals: Counter = metric("stableseg_assigner_model_refusals_total", "Model versions refused (e.g. checksum)")
    changes: Counter = metric("stableseg_assigner_segment_changes_total", "segments.changes events published",
                              ["reason"])
    online_seconds: Histogram = metric("stableseg_assigner_online_batch_seconds",
                                       "Online assignment of one batch of features.updated events",
                                       buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
    online_retailers: Counter = metric("stableseg_assigner_online_retailers_total",
                                       "Retailers assigned online after a feature update")
    serving_version: Gauge = metric("stableseg_assigner_serving_model_version", "Model version serving segments")
    events_skipped: Counter = metric("stableseg_assigner_events_skipped_total", "Unreadable or foreign events skipped",
                                     ["topic"])
