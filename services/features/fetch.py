"""Lean record decoding for the features service's aiokafka consumers (the worker and ``features rebuild``).

aiokafka decodes every fetched record with its headers (here the CloudEvents ``ce_*`` ones) and wraps it in a
``ConsumerRecord`` dataclass, although the features service reads only offset, timestamp and value (the value is
the record in both CloudEvents binary mode and plain JSON). A consumer created with ``lean_options()`` gets plain
record batches (format v2, uncompressed, neither transactional nor control) decoded straight from the fetch buffer
into ``Record`` tuples, headers skipped; a fetch holding any other batch goes through aiokafka's own decoder
(``ConsumerRecord`` has the same three attributes). Other consumers in the process are untouched.

Relies on aiokafka internals (pinned 0.14.0; re-check on an upgrade): its fetcher builds each partition's
``MemoryRecords`` and ``PartitionRecords`` by those module names, a ``PartitionRecords`` is an iterator whose
``next_fetch_offset`` is one past the last record handed out (or the end of the last batch once it is drained),
and records below the fetch offset (a fetch starts at a batch boundary) are skipped. ``install()`` swaps in
``FetchBuffer`` (the same records, the bytes kept) and ``LeanPartitionRecords``; CRCs are checked as aiokafka does.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Iterator
from functools import partial
from typing import Any

import aiokafka.consumer.fetcher as _fetcher
import aiokafka.errors as kafka_errors
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c, decode_varint

from services.features.processor import Record

# base offset, batch length, leader epoch, magic, crc, attributes, last offset delta, first and max timestamp,
# producer id and epoch, base sequence, record count (the v2 batch header)
_HEADER = struct.Struct(">qiibIhiqqqhii")
_LENGTH_END = 12  # base offset + batch length: the batch length counts the bytes after them
_CRC_START = 21  # the CRC covers the bytes from the attributes on
_NOT_PLAIN = 0x07 | 0x10 | 0x20  # compression codec, transactional, control
_LOG_APPEND_TIME = 0x08
_new_record = partial(tuple.__new__, Record)


def raw_value(value: bytes | None) -> bytes | None:
    """The value as fetched: the value deserializer that marks a lean consumer."""
    return value


def lean_options() -> dict[str, Any]:
    """``AIOKafkaConsumer`` options for lean decoding (installs the fetcher hooks once)."""
    install()
    return {"value_deserializer": raw_value}


def install() -> None:
    """Swap ``FetchBuffer`` and ``LeanPartitionRecords`` into aiokafka's fetcher (idempotent)."""
    if _fetcher.PartitionRecords is not LeanPartitionRecords:
        _fetcher.MemoryRecords = FetchBuffer
        _fetcher.PartitionRecords = LeanPartitionRecords


class FetchBuffer:
    """aiokafka's ``MemoryRecords`` of one partition's fetch, keeping the bytes."""

    __slots__ = ("_records", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._records = MemoryRecords(data)

    def size_in_bytes(self) -> int:
        return self._records.size_in_bytes()

    def has_next(self) -> bool:
        return self._records.has_next()

    def next_batch(self) -> Any:
        return self._records.next_batch()


def plain_batches(data: bytes) -> list[tuple[int, ...]] | None:
    """The header fields of each whole batch in ``data`` (a trailing partial one is left out, as aiokafka does),
    or None when one of them is not plain."""
    batches = []
    pos, end = 0, len(data)
    while pos + _HEADER.size <= end:
        header = _HEADER.unpack_from(data, pos)
        stop = pos + _LENGTH_END + header[1]
        if stop > end:
            break
        if header[3] != 2 or header[5] & _NOT_PLAIN:
            return None
        batches.append((pos, stop, *header))
        pos = stop
    return batches


def decode_batch(data: bytes, batch: tuple[int, ...]) -> tuple[list[int], list[bytes | None], list[int]]:
    """(offsets, values, timestamps) of one plain batch (``plain_batches`` item); headers and keys skipped."""
    pos, _stop, base, _length, _epoch, _magic, _crc, attributes, _last, first_ts, max_ts, *_rest, count = batch
    offsets: list[int] = []
    values: list[bytes | None] = []
    stamps: list[int] = []
    varint = decode_varint
    p = pos + _HEADER.size
    for _ in range(count):
        size, p = varint(data, p)
        after = p + size
        delta_ts, p = varint(data, p + 1)  # + 1: the record's attributes byte
        delta, p = varint(data, p)
        key_size, p = varint(data, p)
        if key_size > 0:
            p += key_size
        value_size, p = varint(data, p)
        offsets.append(base + delta)
        stamps.append(first_ts + delta_ts)
        values.append(data[p : p + value_size] if value_size >= 0 else None)
        p = after
    if attributes & _LOG_APPEND_TIME:
        stamps = [max_ts] * count
    return offsets, values, stamps


class LeanPartitionRecords(_fetcher.PartitionRecords):  # type: ignore[misc]
    """aiokafka's ``PartitionRecords``; for a lean consumer's plain fetch it yields ``Record`` tuples."""

    def __init__(self, tp: Any, records: Any, *args: Any) -> None:
        super().__init__(tp, records, *args)
        if self._value_deserializer is raw_value and self._key_deserializer is None and isinstance(records,
                                                                                                  FetchBuffer):
            batches = plain_batches(records.data)
            if batches is not None:
                self._records_iterator = self._lean(records.data, batches)

    def _lean(self, data: bytes, batches: list[tuple[int, ...]]) -> Iterator[Record]:
        for batch in batches:
            pos, stop, base, crc, last = batch[0], batch[1], batch[2], batch[6], batch[8]
            if self._check_crcs and calc_crc32c(data[pos + _CRC_START : stop]) != crc:
                raise kafka_errors.CorruptRecordException(f"Invalid CRC - {self._tp}")
            offsets, values, stamps = decode_batch(data, batch)
            skip = bisect_left(offsets, self.next_fetch_offset)  # a fetch starts at the batch holding its offset
            for record in map(_new_record, zip(offsets[skip:], values[skip:], stamps[skip:], strict=True)):
                self.next_fetch_offset = record[0] + 1
                yield record
            self.next_fetch_offset = base + last + 1
