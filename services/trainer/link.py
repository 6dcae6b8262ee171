"""The trainer's Kafka link: the trigger consumer, the ``models.published`` producer, and a topic keeper.

The consumer is a member of the ``stableseg-trainer`` group (one active consumer per trigger partition, so several
replicas share the work) with auto-commit off: offsets are committed by the service only after the training that
serves them ended, so a trainer killed mid-training is asked again after its restart. Connecting and the topic
keeper are :class:`shared.bus.link.BrokerLink`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import TopicPartition

from shared.bus import KafkaRecord
from shared.bus.link import BrokerLink
from shared.config import Settings
from shared.logging import get_logger

log = get_logger("stableseg.trainer.link")
GROUP_ID = "stableseg-trainer"


class KafkaLink(BrokerLink):
    """The shared link plus ``commit`` of processed trigger offsets and ``send_one``."""

    def __init__(self, settings: Settings, topics: Sequence[str]) -> None:
        super().__init__(settings, "trainer", consume=topics, group_id=GROUP_ID)

    async def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit "processed up to and including ``offset``" per (topic, partition); failures are logged only."""
        if not offsets or self.consumer is None:
            return
        try:
            await self.consumer.commit({TopicPartition(t, p): o + 1 for (t, p), o in offsets.items()})
        except Exception as exc:  # e.g. the partition moved to another replica: it will see the records again
            log.warning("trainer.commit_failed", offsets={f"{t}/{p}": o for (t, p), o in offsets.items()},
                        error=repr(exc))

    async def send_one(self, record: KafkaRecord) -> None:
        """Send one record and wait for acks=all (see :meth:`BrokerLink.send`)."""
        await self.send([record])
