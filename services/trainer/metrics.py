"""Prometheus metrics of the trainer (registered on the app's own registry; base units, ``_total`` counters)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from shared.service_metrics import ServiceMetrics, metric

OUTCOMES = ("published", "rejected", "failed", "skipped")


@dataclass(frozen=True)
class TrainerMetrics(ServiceMetrics):
    duration: Histogram = metric(
        "stableseg_trainer_training_duration_seconds", "Wall time of one training (snapshot to publication)",
        buckets=(5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200),
    )
    stage_seconds: Gauge = metric("stableseg_trainer_stage_seconds", "Seconds spent in each stage of the last training",
                                  ["stage"])
    last_success: Gauge = metric("stableseg_trainer_last_success_timestamp_seconds",
                                 "Unix time of the last published model")
    rows: Gauge = metric("stableseg_trainer_training_rows", "Retailers in the last training snapshot")
    noise_ratio: Gauge = metric("stableseg_trainer_noise_ratio", "Noise ratio of the last trained model", ["space"])
    clusters: Gauge = metric("stableseg_trainer_clusters", "Clusters of the last trained model", ["space"])
    trainings: Counter = metric("stableseg_trainer_trainings",
                                "Trainings by outcome (published, rejected, failed, skipped)", ["outcome"])
    triggers: Counter = metric("stableseg_trainer_triggers",
                               "Trigger messages consumed, by kind (request, month_closed, invalid)", ["kind"])
    in_progress: Gauge = metric("stableseg_trainer_training_in_progress", "1 while this replica is training")

    def prepare(self) -> None:
        for outcome in OUTCOMES:
            self.trainings.labels(outcome)

    def observe_model(self, rows: int, metrics: dict[str, Any], seconds: dict[str, float]) -> None:
        """Figures of a fitted model (published or rejected)."""
        self.rows.set(rows)
        for space in ("latent", "raw", "served"):
            report = metrics.get(space)
            if report:
                self.noise_ratio.labels(space).set(report["noise_ratio"])
                self.clusters.labels(space).set(report["clusters"])
        for stage, value in seconds.items():
            self.stage_seconds.labels(stage).set(value)

    def observe_outcome(self, outcome: str, seconds: float | None = None) -> None:
        self.trainings.labels(outcome).inc()
        if seconds is not None:
            self.duration.observe(seconds)
        if outcome == "published":
            self.last_success.set(time.time())
