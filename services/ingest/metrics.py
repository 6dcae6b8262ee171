"""Prometheus metrics of the ingest service (registered on the app's own registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Histogram

from shared.service_metrics import ServiceMetrics, metric


@dataclass(frozen=True)
class IngestMetrics(ServiceMetrics):
    records: Counter = metric(
        "stableseg_ingest_records",
        "Sales records acknowledged by the broker, by outcome (accepted -> sales.monthly, rejected -> sales.rejected)",
        ["outcome"],
    )
    broker_failures: Counter = metric(
        "stableseg_ingest_broker_failures",
        "POST /v1/sales requests answered 503 because the broker did not acknowledge in time",
    )
    ack_seconds: Histogram = metric(
        "stableseg_ingest_ack_seconds",
        "Time from handing a request's records to the producer until the broker acknowledged all",
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    )
