"""Prometheus metrics of the ingest service (registered on the app's own registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True)
class IngestMetrics:
    records: Counter
    broker_failures: Counter
    ack_seconds: Histogram

    @classmethod
    def register(cls, registry: CollectorRegistry) -> IngestMetrics:
        return cls(
            records=Counter(
                "stableseg_ingest_records",
                "Sales records acknowledged by the broker, by outcome (accepted -> sales.monthly, "
                "rejected -> sales.rejected)",
                ["outcome"],
                registry=registry,
            ),
            broker_failures=Counter(
                "stableseg_ingest_broker_failures",
                "POST /v1/sales requests answered 503 because the broker did not acknowledge in time",
                registry=registry,
            ),
            ack_seconds=Histogram(
                "stableseg_ingest_ack_seconds",
                "Time from handing a request's records to the producer until the broker acknowledged all",
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
                registry=registry,
            ),
        )
