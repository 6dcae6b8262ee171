"""The assigner's Kafka link: a consumer of ``models.published`` + ``features.updated``, a producer, a topic keeper.

The consumer is a member of the ``stableseg-assigner`` group with auto-commit off; the service commits a batch's
offsets only after its effects are durable and re-seeks a batch it could not apply, so nothing is skipped
(at-least-once; every effect is idempotent). Connecting and the topic keeper are
:class:`shared.bus.link.BrokerLink`'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.bus.link import BrokerLink
from shared.bus.topics import FEATURES_UPDATED, MODELS_PUBLISHED
from shared.config import Settings
from shared.logging import get_logger

log = get_logger("stableseg.assigner.link")
GROUP_ID = "stableseg-assigner"
TOPICS = (MODELS_PUBLISHED, FEATURES_UPDATED)
MAX_RECORDS = 2000  # per poll: one online batch of features.updated


class KafkaLink(BrokerLink):
    """The shared link plus ``commit`` past applied records and ``rewind`` to re-read unapplied ones."""

    def __init__(self, settings: Settings, group_id: str = GROUP_ID) -> None:
        super().__init__(settings, "assigner", consume=TOPICS, group_id=group_id)

    async def getmany(self, timeout_ms: int = 1000, max_records: int | None = MAX_RECORDS) -> list[ConsumerRecord]:
        return await super().getmany(timeout_ms, max_records)

    async def commit(self, records: Sequence[ConsumerRecord]) -> None:
        """Commit past the last of ``records`` per partition; a failure is logged (they come again, harmlessly)."""
        if not records or self.consumer is None:
            return
        offsets: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:
            log.warning("assigner.commit_failed", error=repr(exc))

    def rewind(self, records: Sequence[ConsumerRecord]) -> None:
        """Seek back to the first of ``records`` per partition, so an unapplied batch is fetched again."""
        if self.consumer is None:
            return
        first: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            first[tp] = min(first.get(tp, r.offset), r.offset)
        for tp, offset in first.items():
            with contextlib.suppress(Exception):  # partition revoked meanwhile: its new owner reads it
                self.consumer.seek(tp, offset)
