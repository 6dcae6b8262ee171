"""``shared.service_metrics``: a service's metrics declared as dataclass fields, registered in one call."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.assigner.metrics import AssignerMetrics
from services.features.metrics import FeaturesMetrics
from services.ingest.metrics import IngestMetrics
from services.trainer.metrics import OUTCOMES, TrainerMetrics
from shared.service_metrics import ServiceMetrics, metric


@dataclass(frozen=True)
class Example(ServiceMetrics):
    hits: Counter = metric("example_hits_total", "Hits by kind", ["kind"])
    seconds: Histogram = metric("example_seconds", "Durations", buckets=(0.1, 1.0))
    up: Gauge = metric("example_up", "1 when up")

    def prepare(self) -> None:
        self.up.set(1)


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_every_field_is_registered_with_its_kind_labels_and_buckets() -> None:
    registry = CollectorRegistry()
    metrics = Example.register(registry)
    assert isinstance(metrics.hits, Counter) and isinstance(metrics.seconds, Histogram)
    assert isinstance(metrics.up, Gauge)
    metrics.hits.labels("a").inc(2)
    metrics.seconds.observe(0.5)
    assert _value(registry, "example_hits_total", kind="a") == 2.0
    assert _value(registry, "example_seconds_bucket", le="0.1") == 0.0
    assert _value(registry, "example_seconds_bucket", le="1.0") == 1.0
    assert _value(registry, "example_up") == 1.0  # prepare() ran once registered
    with pytest.raises(FrozenInstanceError):
        metrics.up = metrics.up  # type: ignore[misc]


def test_two_apps_register_the_same_metrics_on_their_own_registries() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    Example.register(first).hits.labels("x").inc()
    Example.register(second)
    assert _value(first, "example_hits_total", kind="x") == 1.0
    assert _value(second, "example_hits_total", kind="x") is None
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Example.register(first)


@pytest.mark.parametrize("cls", [AssignerMetrics, FeaturesMetrics, IngestMetrics, TrainerMetrics])
def test_the_services_metrics_register(cls: type[ServiceMetrics]) -> None:
    registry = CollectorRegistry()
    cls.register(registry)
    names = {family.name for family in registry.collect()}
    service = cls.__name__.removesuffix("Metrics").lower()
    assert names and all(name.startswith(f"stableseg_{service}_") for name in names)


def test_service_prepare_hooks() -> None:
    registry = CollectorRegistry()
    TrainerMetrics.register(registry)
    assert {o: _value(registry, "stableseg_trainer_trainings_total", outcome=o) for o in OUTCOMES} == dict.fromkeys(
        OUTCOMES, 0.0)
    registry = CollectorRegistry()
    FeaturesMetrics.register(registry)
    assert _value(registry, "stableseg_features_redis_up") == 1.0
