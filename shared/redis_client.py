"""The one place Redis clients are made: a standalone client, or redis-py's cluster client when
``STABLESEG_REDIS_CLUSTER`` is true (``STABLESEG_REDIS_URL`` then names any one node of the cluster)."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

SyncClient = redis.Redis | RedisCluster
AsyncClient = aioredis.Redis | AsyncRedisCluster


def _check(url: str) -> None:
    if not url:
        raise ValueError("redis_url: required (e.g. redis://127.0.0.1:6379/0)")


def redis_client(url: str, *, cluster: bool = False, **options: Any) -> SyncClient:
    """A blocking client (``options`` go to redis-py, e.g. ``socket_timeout``)."""
    _check(url)
    if cluster:
        return RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)


def async_redis_client(url: str, *, cluster: bool = False, **options: Any) -> AsyncClient:
    """An asyncio client (same rules as :func:`redis_client`)."""
    _check(url)
    if cluster:
        return AsyncRedisCluster.from_url(url, **options)
    return aioredis.Redis.from_url(url, **options)


def settings_client(settings: Any, **options: Any) -> SyncClient:
    """``redis_client`` for ``settings.redis_url`` / ``settings.redis_cluster``."""
    return redis_client(settings.redis_url, cluster=settings.redis_cluster, **options)


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster | AsyncRedisCluster)
