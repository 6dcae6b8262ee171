"""``FeaturesWorker`` takes its Redis, producer and link timeouts from Settings (built, not started: no I/O)."""

from __future__ import annotations

from services.features.processor import RedisTimeouts
from services.features.worker import FeaturesWorker
from shared.config import Settings


def test_the_worker_passes_its_timeouts_down_from_settings() -> None:
    settings = Settings(features_redis_socket_timeout_seconds=12.0, features_redis_connect_timeout_seconds=3.0,
                        features_redis_retry_min_seconds=0.3, features_redis_retry_max_seconds=4.0,
                        features_producer_request_timeout_ms=9_000, kafka_connect_retry_min_seconds=0.4,
                        kafka_connect_retry_max_seconds=6.0, kafka_send_retry_min_seconds=0.5,
                        kafka_send_retry_max_seconds=7.0)
    worker = FeaturesWorker(settings)
    try:
        pool = worker.redis.connection_pool.connection_kwargs
        assert (pool["socket_timeout"], pool["socket_connect_timeout"]) == (12.0, 3.0)
        assert worker.processor.redis_timeouts == RedisTimeouts(12.0, 3.0, 0.3, 4.0)
        wait = worker.processor._redis_wait()
        assert (wait.multiplier, wait.max) == (0.3, 4.0)
        assert worker.link.publisher.overrides["request_timeout_ms"] == 9_000
        connect, send = worker.link.retry.connect_wait(), worker.link.retry.send_wait()
        assert (connect.multiplier, connect.max, send.multiplier, send.max) == (0.4, 6.0, 0.5, 7.0)
    finally:
        worker.redis.close()


def test_the_defaults_are_the_former_constants() -> None:
    worker = FeaturesWorker(Settings())
    try:
        pool = worker.redis.connection_pool.connection_kwargs
        assert (pool["socket_timeout"], pool["socket_connect_timeout"]) == (30.0, 5.0)
        assert worker.link.publisher.overrides["request_timeout_ms"] == 15_000
        redis_wait, connect, send = (worker.processor._redis_wait(), worker.link.retry.connect_wait(),
                                     worker.link.retry.send_wait())
        assert [(w.multiplier, w.max) for w in (redis_wait, connect, send)] == [(0.1, 2.0), (0.2, 5.0), (0.2, 3.0)]
    finally:
        worker.redis.close()
