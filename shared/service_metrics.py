"""How a service declares its Prometheus metrics: a frozen dataclass, one field a metric, registered in one call.

Each field's type is the metric's kind (``Counter``, ``Gauge``, ``Histogram``) and its value a :func:`metric` spec;
``register(registry)`` creates every metric on the app's own registry (``app.state.metrics_registry``).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any, Self

from prometheus_client import CollectorRegistry


def metric(name: str, documentation: str, labels: Sequence[str] = (), buckets: Sequence[float] | None = None) -> Any:
    """One metric of a :class:`ServiceMetrics` dataclass (base units, ``_total`` counters, no per-retailer labels)."""
    spec = {"name": name, "documentation": documentation, "labelnames": tuple(labels)}
    if buckets is not None:
        spec["buckets"] = tuple(buckets)
    return dataclasses.field(metadata={"metric": spec})


class ServiceMetrics:
    """Base of a service's metrics: ``@dataclass(frozen=True)`` subclasses whose fields are :func:`metric` specs."""

    @classmethod
    def register(cls, registry: CollectorRegistry) -> Self:
        """Every declared metric, created on ``registry``."""
        kinds = typing.get_type_hints(cls)
        values = {f.name: kinds[f.name](**f.metadata["metric"], registry=registry) for f in dataclasses.fields(cls)}
        created = cls(**values)
        created.prepare()
        return created

    def prepare(self) -> None:
        """Set initial values or label children once registered (nothing by default)."""
