"""The feature store's keyspace in Redis: every key name, every field encoding and the epoch switch live here.

Keys (``e`` = epoch, from :class:`shared.keyspace.Generations` on ``ss:epoch``; ``{T}`` = the hash tag of a slot
group, :func:`shared.keyspace.slot_tags`; a retailer's group is ``crc32(shop_id) % groups``):

- ``ss:epoch``: the live epoch. ``ss:layout``: ``compact-v2:<groups>``, the layout of the data (a store without it
  but with data has the previous layout: ``stableseg features rebuild`` migrates).
- ``ss:{T}:epoch``: the group's fence, the highest epoch a writer used in it. A script refuses an older epoch, so a
  wipe fences out every writer of the old epoch group by group, also on a cluster.
- ``ss:e:{T}:r:<shop_id>`` (hash, one per retailer; every value small, so Redis keeps it listpack-encoded):
  ``n`` products seen, ``p<c>`` the product ids ``8c..8c+7`` (msgpack strings; a product's cell index is its
  position), ``<k>`` (k = month index ``(year-1900)*12 + month-1``, all digits) the month's cells as a msgpack
  stream ``index, qty, index, qty, ...`` (ascending index; the latest value of each cell: the replace rule),
  ``r`` revision (cell changes so far), ``t`` Kafka timestamp (ms) of the latest changing record, and the
  features: ``w`` the revision they were computed from (an older computation never overwrites a newer one),
  ``u`` update time (ms; the ``t`` they were computed from), ``a`` as-of month index, and per feature set (code
  ``F`` + 2 characters, :func:`set_code`) ``<code>`` = ``2 * feature_set_version + eligible`` and ``<code>.<i>``
  its values ``8i..8i+7`` as little-endian float64.
- ``ss:e:{T}:g`` (hash): ``n`` retailers in the group, ``l`` latest month index seen. ``ss:e:{T}:o`` (hash):
  "topic:partition" -> "offset:fingerprint" of the last record applied to the group (every group sees every
  batch, so the groups' offsets move together). ``ss:e:{T}:d`` (set): retailers whose features are behind their
  cells. ``ss:e:{T}:mr`` (hash): month index -> retailers with data in it.
- ``ss:e:{M}:l``, ``ss:e:{M}:outbox`` (tag ``M`` = :data:`MONTHS_TAG`, fence ``ss:{M}:epoch``): the latest month
  closed through and the ``months.closed`` outbox (see ``services/features/months.py``).
"""

from __future__ import annotations

import math
import string
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import msgpack
import numpy as np

from shared.feature_store.scripts import FENCE
from shared.keyspace import Generations, Script, drop_prefix, group_of, slot_tags
from shared.schemas import YEAR_MIN

ROOT = "ss"
EPOCH_KEY = f"{ROOT}:epoch"
LAYOUT_KEY = f"{ROOT}:layout"
LAYOUT_NAME = "compact-v2"
MONTHS_TAG = "ss.months"
CHUNK_VALUES = 8  # float64 values per field: 64 bytes, the listpack value limit
PRODUCTS_PER_FIELD = 8
YEAR0 = YEAR_MIN  # month index 0 is January of the first year a record may name
_B36 = string.digits + string.ascii_uppercase


def month_index(year: int, month: int) -> int:
    return (year - YEAR0) * 12 + month - 1


def period(k: int) -> str:
    """Month index -> "YYYY-MM"."""
    return f"{YEAR0 + k // 12:04d}-{k % 12 + 1:02d}"


def period_index(text: str) -> int:
    return month_index(int(text[:4]), int(text[5:7]))


def set_code(name: str) -> str:
    """Field code of a feature set: ``F`` + two base-36 characters of its name's CRC-32."""
    value = zlib.crc32(name.encode()) % (36 * 36)
    return "F" + _B36[value // 36] + _B36[value % 36]


def vector_fields(name: str, width: int) -> list[str]:
    code = set_code(name)
    return [f"{code}.{i}" for i in range((width + CHUNK_VALUES - 1) // CHUNK_VALUES)]


def vector_chunks(values: np.ndarray) -> list[bytes]:
    """One row of float64 values -> the fields' bytes (8 values each)."""
    blob = np.ascontiguousarray(values, dtype="<f8").tobytes()
    step = 8 * CHUNK_VALUES
    return [blob[i : i + step] for i in range(0, len(blob), step)]


def iso_from_ms(ms: int) -> str:
    """Kafka timestamp (ms since the epoch) -> ISO-8601 UTC with milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def head_value(version: int, eligible: bool) -> int:
    return 2 * int(version) + int(bool(eligible))


@dataclass(frozen=True)
class Layout:
    """Key names of one store layout (``groups`` slot groups; ``Layout.from_settings()`` for the configured one)."""

    groups: int

    @classmethod
    def from_settings(cls, settings: Any = None) -> Layout:
        """The layout of ``settings`` (default: the process settings' ``feature_store_slot_groups``)."""
        if settings is None:
            from shared.config import get_settings

            settings = get_settings()
        return cls(settings.feature_store_slot_groups)

    @cached_property
    def tags(self) -> tuple[str, ...]:
        return slot_tags(self.groups)

    @property
    def marker(self) -> str:
        return f"{LAYOUT_NAME}:{self.groups}"

    def generations(self, client: object) -> Generations:
        return Generations(client, ROOT, EPOCH_KEY)

    def group(self, shop: str) -> int:
        return group_of(shop, self.groups)

    def fence(self, group: int) -> str:
        return f"{ROOT}:{{{self.tags[group]}}}:epoch"

    def fences(self) -> list[str]:
        return [self.fence(g) for g in range(self.groups)] + [self.months_fence]

    def group_prefix(self, epoch: int, group: int) -> str:
        return f"{ROOT}:{epoch}:{{{self.tags[group]}}}:"

    def record(self, epoch: int, shop: str) -> str:
        return f"{self.group_prefix(epoch, self.group(shop))}r:{shop}"

    def records_pattern(self, epoch: int) -> str:
        return f"{ROOT}:{epoch}:{{*}}:r:*"

    def split_record(self, key: bytes) -> tuple[int, str]:
        """A record key -> (group, shop_id)."""
        text = key.decode()
        tag_end = text.index("}:r:")
        return self.tags.index(text[text.index("{") + 1 : tag_end]), text[tag_end + 4 :]

    def group_key(self, epoch: int, group: int, name: str) -> str:
        """``g`` meta, ``o`` offsets, ``d`` dirty set, ``mr`` month -> retailers."""
        return self.group_prefix(epoch, group) + name

    @property
    def months_fence(self) -> str:
        return f"{ROOT}:{{{MONTHS_TAG}}}:epoch"

    def months_key(self, epoch: int, name: str) -> str:
        """``l`` latest month closed through, ``outbox`` the months.closed outbox."""
        return f"{ROOT}:{epoch}:{{{MONTHS_TAG}}}:{name}"


def encode_entries(frames: dict[str, Any], shops: list[str], revisions: Any,
                   stamps: Any) -> list[tuple[str, int, list]]:
    """WRITE entries ``(shop, revision, [field, value, ...])`` from one features frame per set (``eligible``,
    ``as_of``, the set's columns; rows in ``shops`` order), each shop's revision and update time (ms)."""
    from shared.features import get_feature_set

    pairs: list[list] = [["u", int(ms)] for ms in stamps]
    for n, (name, frame) in enumerate(frames.items()):
        fs = get_feature_set(name)
        values = frame[list(fs.columns)].to_numpy(dtype=np.float64)
        eligible = frame["eligible"].to_numpy(dtype=bool)
        code, fields = set_code(fs.name), vector_fields(fs.name, len(fs.columns))
        as_of = frame["as_of"].tolist()
        for i, row in enumerate(pairs):
            if n == 0:
                row.extend(("a", period_index(as_of[i])))
            row.extend((code, head_value(fs.version, eligible[i])))
            for name_i, chunk in zip(fields, vector_chunks(values[i]), strict=True):
                row.extend((name_i, chunk))
    return [(shop, int(revisions[i]), pairs[i]) for i, shop in enumerate(shops)]


class LayoutError(RuntimeError):
    """Redis holds the feature store in another layout than this code (or these settings) use."""


def check_layout(client: Any, layout: Layout, create: bool = False) -> None:
    """Raise :class:`LayoutError` unless Redis holds ``layout`` (or nothing yet: then ``create`` records it)."""
    found = client.get(LAYOUT_KEY)
    if found is not None:
        if found.decode() != layout.marker:
            raise LayoutError(f"feature_store_slot_groups: the store in Redis has layout {found.decode()!r}, these "
                              f"settings use {layout.marker!r}; run `stableseg features rebuild` (or set them back)")
        return
    epoch = int(client.get(EPOCH_KEY) or 0)
    if client.exists(f"{ROOT}:{epoch}:shops", f"{ROOT}:{epoch}:off", f"{ROOT}:{epoch}:meta"):
        raise LayoutError("feature store: Redis holds the previous (per-feature-set hash) layout; run "
                          "`stableseg features rebuild` to migrate it")
    if create:
        client.set(LAYOUT_KEY, layout.marker, nx=True)


def switch_epoch(client: Any, layout: Layout) -> int:
    """The wipe: a new empty epoch (one INCR, readers see it at once), this layout recorded, every group fenced
    (writers of the old epoch are refused from then on), then the old epochs' keys deleted. Returns the epoch."""
    generations = layout.generations(client)
    old = generations.current() or 0
    new = generations.advance()
    client.set(LAYOUT_KEY, layout.marker)
    Script(client, FENCE).run_many([([fence], [new]) for fence in layout.fences()])
    for epoch in range(old, new):
        drop_prefix(client, generations.prefix(epoch))
    return new


class CellReader:
    """Decodes the month fields of record hashes (one msgpack stream reader reused for every field)."""

    def __init__(self) -> None:
        self._unpacker = msgpack.Unpacker(raw=False)

    def months(self, raw: dict[bytes, bytes]) -> tuple[list[int], list[float], list[int]]:
        """(month indexes ascending, monthly quantity sums, distinct products) of one record. Sums are exactly
        rounded (``math.fsum``), so they do not depend on the order in which cells arrived."""
        ks = sorted(int(f) for f in raw if f[:1].isdigit())
        sums, counts = [], []
        up = self._unpacker
        for k in ks:
            up.feed(raw[str(k).encode()])
            cells = list(up)
            sums.append(math.fsum(cells[1::2]))
            counts.append(len(cells) // 2)
        return ks, sums, counts


__all__ = [
    "EPOCH_KEY",
    "LAYOUT_KEY",
    "CellReader",
    "Layout",
    "LayoutError",
    "check_layout",
    "encode_entries",
    "head_value",
    "iso_from_ms",
    "month_index",
    "period",
    "period_index",
    "set_code",
    "switch_epoch",
    "vector_chunks",
    "vector_fields",
]
