"""The event bus everyone codes against: contract topics, CloudEvents encoding, producers."""

from shared.bus.events import Event, EventDecodeError, KafkaRecord, decode_event, encode_event, training_request
from shared.bus.producer import AsyncPublisher, make_sync_producer, publish
from shared.bus.topics import ALL_TOPICS, ensure_topics, missing_topics, partition_mismatches, topic_specs

__all__ = [
    "ALL_TOPICS",
    "AsyncPublisher",
    "Event",
    "EventDecodeError",
    "KafkaRecord",
    "decode_event",
    "encode_event",
    "ensure_topics",
    "make_sync_producer",
    "missing_topics",
    "partition_mismatches",
    "publish",
    "topic_specs",
    "training_request",
]
