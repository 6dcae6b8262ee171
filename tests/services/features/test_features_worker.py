"""``FeaturesWorker`` takes its Redis, producer and broker-link timeouts from Settings (built, not started: no I/O)."""

from __future__ import annotations

from typing import Any

from services.features.processor import Processor, redis_backoff
from services.features.worker import FeaturesWorker
from shared.config import Settings


def _figures(worker: FeaturesWorker) -> dict[str, Any]:
    pool = worker.redis.connection_pool.connection_kwargs
    waits = {"redis": worker.processor.redis_wait, "connect": worker.link.connect_wait,
             "send": worker.link.send_wait}
    return {"socket": (pool["socket_timeout"], pool["socket_connect_timeout"]),
            "request_timeout_ms": worker.link.publisher.overrides["request_timeout_ms"],
            **{name: (wait.multiplier, wait.max) for name, wait in waits.items()}}


def test_the_worker_passes_its_timeouts_down_from_settings() -> None:
    settings = Settings(features_redis_socket_timeout_seconds=12.0, features_redis_connect_timeout_seconds=3.0,
                        features_redis_retry_min_seconds=0.3, features_redis_retry_max_seconds=4.0,
                        features_producer_request_timeout_ms=9_000, kafka_connect_retry_min_seconds=0.4,
                        kafka_connect_retry_max_seconds=6.0, kafka_send_retry_min_seconds=0.5,
                        kafka_send_retry_max_seconds=7.0)
    worker = FeaturesWorker(settings)
    try:
        assert _figures(worker) == {"socket": (12.0, 3.0), "request_timeout_ms": 9_000, "redis": (0.3, 4.0),
                                    "connect": (0.4, 6.0), "send": (0.5, 7.0)}
    finally:
        worker.redis.close()


def test_the_defaults_are_the_former_constants() -> None:
    worker = FeaturesWorker(Settings())
    try:
        assert _figures(worker) == {"socket": (30.0, 5.0), "request_timeout_ms": 15_000, "redis": (0.1, 2.0),
                                    "connect": (0.2, 5.0), "send": (0.2, 3.0)}
    finally:
        worker.redis.close()
    default = Processor(None, None, [], None, "t").redis_wait  # type: ignore[arg-type]
    assert (default.multiplier, default.max) == (0.1, 2.0) == (redis_backoff().multiplier, redis_backoff().max)
