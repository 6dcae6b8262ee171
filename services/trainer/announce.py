"""The ``models.published`` event: its payload, and finding out which version was announced last.

The event is sent only after the version is durable (artifacts committed, registry row published). If the
service dies between the two, :func:`last_announced_version` lets the next start announce the current version
again (consumers treat a repeated announcement of a version as a no-op).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from shared.bus import KafkaRecord, decode_event, encode_event
from shared.bus.topics import MODELS_PUBLISHED
from shared.logging import get_logger
from shared.storage import ModelVersionInfo, Registry

log = get_logger("stableseg.trainer.announce")
SOURCE = "stableseg/trainer"
_SUMMARY_KEYS = ("n", "clusters", "noise", "noise_ratio", "largest_share", "sizes", "gini", "silhouette", "dbcv")


def metrics_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The event's ``metrics``: each space's and the served clustering's figures (the served one with its space and
    density), the selection's candidates and each served cluster's trust, the autoencoder's losses, the timings."""
    spaces = {
        space: None if metrics.get(space) is None else {k: metrics[space].get(k) for k in _SUMMARY_KEYS}
        for space in ("latent", "raw", "served")
    }
    if spaces["served"] is not None:
        spaces["served"].update({k: metrics["served"].get(k) for k in ("space", "min_cluster_size", "min_samples")})
    selection = metrics.get("selection") or {}
    spaces.update(candidates=selection.get("candidates", []), trust=metrics.get("trust", {}))
    autoencoder = {k: v for k, v in (metrics.get("autoencoder") or {}).items() if k != "history"}
    return {"n": metrics.get("n"), **spaces, "autoencoder": autoencoder, "seconds": metrics.get("seconds", {})}


def published_record(info: ModelVersionInfo) -> KafkaRecord:
    """The CloudEvents record for a published registry version (keyed by the version number)."""
    if info.status != "published" or info.artifact_uri is None or info.sha256 is None:
        raise ValueError(f"version: {info.version} is {info.status}; only a published version can be announced")
    data = {
        "version": info.version,
        "feature_set": info.feature_set,
        "artifact_uri": info.artifact_uri,
        "sha256": info.sha256,
        "metrics": metrics_summary(info.metrics),
        "data_as_of": info.data_as_of,
    }
    return encode_event(MODELS_PUBLISHED, data, key=str(info.version), source=SOURCE)


def last_announced_version(bootstrap: str, timeout_s: float = 5.0, security: dict[str, Any] | None = None
                           ) -> int | None:
    """The highest ``version`` among the last record of each ``models.published`` partition (None when empty)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, client_id="stableseg-trainer-announce",
        consumer_timeout_ms=int(timeout_s * 1000), request_timeout_ms=int(timeout_s * 1000) + 1000, **(security or {}),
    )
    try:
        ids = consumer.partitions_for_topic(MODELS_PUBLISHED) or set()
        partitions = [TopicPartition(MODELS_PUBLISHED, p) for p in sorted(ids)]
        if not partitions:
            return None
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        wanted = {tp: end - 1 for tp, end in ends.items() if end > 0}
        for tp, offset in wanted.items():
            consumer.seek(tp, offset)
        if not wanted:
            return None
        consumer.pause(*(set(partitions) - set(wanted)))
        found: list[int] = []
        for message in consumer:
            try:
                version = (decode_event(message.value, message.headers, message.key).data or {}).get("version")
                if isinstance(version, int):
                    found.append(version)
            except ValueError as exc:
                log.warning("announce.unreadable_record", offset=message.offset, error=str(exc))
            wanted.pop(TopicPartition(message.topic, message.partition), None)
            if not wanted:
                break
        return max(found) if found else None
    finally:
        consumer.close()


async def reconcile(registry: Registry, bootstrap: str, send: Callable[[KafkaRecord], Awaitable[None]],
                    security: dict[str, Any] | None = None) -> bool:
    """Announce the current version if the last ``models.published`` record is older (a crash or a broker outage
    after publishing, or a memory-only broker that lost the topic). True when nothing is left to announce."""
    try:
        current = await asyncio.to_thread(registry.versions.current)
        if current is None or current.status != "published":
            return True
        last = await asyncio.to_thread(last_announced_version, bootstrap, 5.0, security)
        if last is None or last < current.version:
            log.warning("trainer.reannouncing", version=current.version, last_announced=last)
            await send(published_record(current))
        return True
    except Exception as exc:
        log.warning("trainer.reconcile_failed", error=repr(exc))
        return False
