"""CloudEvents 1.0 over Kafka in binary mode (``ce_*`` headers, UTF-8 JSON value, UTF-8 string key).

The header mapping is the ``cloudevents`` 2.x Kafka binding's; this module only adds orjson, the per-topic
event types, and a tolerant decoder for plain JSON records written by producers that know nothing of CloudEvents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from shared.bus import topics

CONTENT_TYPE = "application/json"

#: Default ``ce_type`` of each contract topic.
EVENT_TYPES: dict[str, str] = {name: f"io.stableseg.{name}.v1" for name in topics.ALL_TOPICS}


class EventDecodeError(ValueError):
    """A Kafka record could not be read as an event (the message names the part and the problem)."""


class _OrjsonFormat(JSONFormat):
    """The library's JSON format with orjson for the data payload; strict: invalid JSON is an error."""

    def write_data(self, data: dict[str, Any] | str | bytes | None, datacontenttype: str | None) -> bytes:
        if data is None:
            return b""
        if isinstance(data, (bytes, bytearray)):
            return bytes(data)
        try:
            return orjson.dumps(data)
        except TypeError as exc:
            raise ValueError(f"data: not JSON serialisable ({exc})") from exc

    def read_data(self, body: bytes, datacontenttype: str | None) -> dict[str, Any] | None:
        return _loads(body)


_FORMAT = _OrjsonFormat()


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """What to hand to a Kafka producer."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded record. ``type``/``id``/``source``/``time`` are None for plain JSON records without ce headers."""

    id: str | None
    type: str | None
    source: str | None
    time: datetime | None
    key: str
    data: dict[str, Any] | None


def _loads(body: bytes | None) -> dict[str, Any] | None:
    if not body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(f"value: not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise EventDecodeError(f"value: expected a JSON object, got {type(data).__name__}")
    return data


def encode_event(
    topic: str,
    data: dict[str, Any],
    key: str,
    source: str,
    event_type: str | None = None,
    *,
    event_id: str | None = None,
    time: datetime | None = None,
) -> KafkaRecord:
    """Build a binary-mode CloudEvents record. ``event_type`` defaults to the topic's type (``EVENT_TYPES``);
    ``event_id`` (default a UUID4) and ``time`` (default now, UTC) may be given for deterministic replays."""
    if event_type is None:
        try:
            event_type = EVENT_TYPES[topic]
        except KeyError:
            raise ValueError(f"event_type: required for topic {topic!r}, which is not a contract topic") from None
    if not isinstance(key, str):
        raise TypeError(f"key: expected str, got {type(key).__name__}")
    attributes: dict[str, Any] = {"type": event_type, "source": source, "datacontenttype": CONTENT_TYPE}
    if event_id is not None:
        attributes["id"] = event_id
    if time is not None:
        attributes["time"] = time
    try:
        event = CloudEvent(attributes, data)
    except BaseCloudEventException as exc:
        raise ValueError(f"invalid event attributes: {exc}") from exc
    message = ce_kafka.to_binary(event, _FORMAT, key_mapper=lambda _: key)
    return KafkaRecord(topic, key.encode(), message.value, list(message.headers.items()))


def training_request(reason: str, requested_by: str, source: str) -> KafkaRecord:
    """The ``training.requests`` event (``stableseg retrain``, the admin API, the demo): why, and who asks."""
    return encode_event(topics.TRAINING_REQUESTS, {"reason": reason, "requested_by": requested_by}, key="",
                        source=source)


def _has_ce_headers(headers: list[tuple[str, bytes]]) -> bool:
    return any(name.lower().startswith(ce_kafka.CE_PREFIX) for name, _ in headers)


def decode_event(value: bytes | None, headers: list[tuple[str, bytes]] | None, key: bytes | None = None) -> Event:
    """Read a record: binary-mode CloudEvents, or a plain JSON value (then ``type`` etc. are None).

    Raises ``EventDecodeError`` for invalid JSON, a non-object value, a non-UTF-8 key or invalid ce headers.
    """
    try:
        key_text = key.decode() if key else ""
    except UnicodeDecodeError as exc:
        raise EventDecodeError(f"key: not valid UTF-8 ({exc})") from exc
    headers = list(headers or [])
    if not _has_ce_headers(headers):
        return Event(None, None, None, None, key_text, _loads(value))
    message = ce_kafka.KafkaMessage(headers={k: bytes(v) for k, v in headers}, key=None, value=value or b"")
    try:
        event = ce_kafka.from_binary(message, _FORMAT)
    except EventDecodeError:
        raise
    except (BaseCloudEventException, ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise EventDecodeError(f"headers: invalid CloudEvents attributes ({exc})") from exc
    return Event(event.get_id(), event.get_type(), event.get_source(), event.get_time(), key_text, event.get_data())
