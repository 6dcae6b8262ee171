"""The contract topics, their partition counts, and explicit creation (never rely on broker auto-creation).

The embedded tansu (v0.6.0-510f3e2) DOES auto-create an unknown topic on a producer's first metadata request, with
4 partitions, whatever the client's ``allow_auto_create_topics``: call ``ensure_topics`` before producing, and use
``partition_mismatches`` to detect a topic that was auto-created with the wrong count.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaConnectionError, RetriableError, TopicAlreadyExistsError
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.config import Settings
from shared.logging import get_logger

log = get_logger(__name__)

SALES_MONTHLY = "sales.monthly"
SALES_REJECTED = "sales.rejected"
FEATURES_UPDATED = "features.updated"
MONTHS_CLOSED = "months.closed"
TRAINING_REQUESTS = "training.requests"
MODELS_PUBLISHED = "models.published"
SEGMENTS_CHANGES = "segments.changes"
SEGMENTS_LINEAGE = "segments.lineage"

ALL_TOPICS: tuple[str, ...] = (
    SALES_MONTHLY,
    SALES_REJECTED,
    FEATURES_UPDATED,
    MONTHS_CLOSED,
    TRAINING_REQUESTS,
    MODELS_PUBLISHED,
    SEGMENTS_CHANGES,
    SEGMENTS_LINEAGE,
)

# While the broker is starting (or restarting) these are expected; anything else is a real error.
_TRANSIENT = (RetriableError, KafkaConnectionError)


def topic_specs(settings: Settings) -> dict[str, int]:
    """Contract topic name -> partition count from the settings."""
    specs = dict.fromkeys(ALL_TOPICS, 1)
    for topic in (SALES_MONTHLY, SALES_REJECTED, FEATURES_UPDATED):
        specs[topic] = settings.sales_partitions
    specs[SEGMENTS_CHANGES] = settings.segment_partitions
    return specs


def _admin(bootstrap: str, security: dict[str, Any] | None) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="stableseg-admin", request_timeout_ms=5000,
        bootstrap_timeout_ms=5000, **(security or {}),
    )


def _validate(specs: dict[str, int]) -> None:
    for name, partitions in specs.items():
        if not name or not isinstance(partitions, int) or partitions < 1:
            raise ValueError(f"topic {name!r}: partitions must be an integer >= 1, got {partitions!r}")


@retry(retry=retry_if_exception_type(_TRANSIENT), stop=stop_after_delay(30), wait=wait_exponential(0.1, max=2),
       reraise=True)
def missing_topics(bootstrap: str, specs: dict[str, int] | list[str], security: dict[str, Any] | None = None
                   ) -> list[str]:
    """Names from ``specs`` that do not exist on the broker (empty list = ready). ``security``: the
    ``kafka_security(settings, "kafka-python")`` options (here and below)."""
    admin = _admin(bootstrap, security)
    try:
        existing = set(admin.list_topics())
    finally:
        admin.close()
    return sorted(name for name in specs if name not in existing)


@retry(retry=retry_if_exception_type(_TRANSIENT), stop=stop_after_delay(30), wait=wait_exponential(0.1, max=2),
       reraise=True)
def ensure_topics(bootstrap: str, specs: dict[str, int], replication_factor: int = 1,
                  security: dict[str, Any] | None = None) -> list[str]:
    """Create the topics of ``specs`` that are missing; return the names created by this call.

    Idempotent and safe when several services race (TopicAlreadyExists is fine). Retried while the broker starts.
    An existing topic with a different partition count is left alone and logged as a warning.
    """
    _validate(specs)
    admin = _admin(bootstrap, security)
    try:
        existing = set(admin.list_topics())
        _warn_partition_mismatch(admin, {n: p for n, p in specs.items() if n in existing})
        created: list[str] = []
        for name in sorted(set(specs) - existing):
            try:
                admin.create_topics([NewTopic(name, specs[name], replication_factor)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    if created:
        log.info("topics.created", topics=created, bootstrap=bootstrap)
    return created


def _mismatches(admin: KafkaAdminClient, specs: dict[str, int]) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for topic in admin.describe_topics(sorted(specs)) if specs else []:
        name = topic.get("name") or topic.get("topic")
        actual, wanted = len(topic.get("partitions") or []), specs[name]
        if actual != wanted:
            found[name] = (actual, wanted)
    return found


def _warn_partition_mismatch(admin: KafkaAdminClient, specs: dict[str, int]) -> None:
    for name, (actual, wanted) in _mismatches(admin, specs).items():
        log.warning("topics.partitions_mismatch", topic=name, actual=actual, configured=wanted)


@retry(retry=retry_if_exception_type(_TRANSIENT), stop=stop_after_delay(30), wait=wait_exponential(0.1, max=2),
       reraise=True)
def partition_mismatches(bootstrap: str, specs: dict[str, int], security: dict[str, Any] | None = None
                         ) -> dict[str, tuple[int, int]]:
    """Existing topics whose partition count differs from ``specs``: name -> (actual, configured).

    Typically a topic auto-created by the broker before ``ensure_topics`` ran (tansu creates 4 partitions)."""
    admin = _admin(bootstrap, security)
    try:
        existing = set(admin.list_topics())
        return _mismatches(admin, {n: p for n, p in specs.items() if n in existing})
    finally:
        admin.close()
