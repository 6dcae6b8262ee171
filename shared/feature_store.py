"""The live feature store in Redis: written by the features service, read by the trainer, assigner and CLI.

Layout (feast-style: one hash per entity and feature set). Every key lives under an *epoch* prefix
``ss:{epoch}:``; ``wipe()`` switches to a new epoch in one atomic INCR (writers fenced by the epoch notice at once,
readers see an empty store) and then deletes the old keys in the background of the call.

- ``ss:epoch``: the current epoch (absent = 0).
- ``ss:{e}:f:{feature_set}:{shop_id}`` (hash): one field per feature column (``repr`` of the float), ``eligible``
  ("1"/"0"), ``as_of`` ("YYYY-MM" of the shop's latest active month), ``updated_at`` (ISO-8601 UTC: the Kafka
  timestamp of the latest record that changed the shop, so a replay reproduces it), ``feature_set``,
  ``feature_set_version``, ``revision`` (count of cell changes applied to the shop; a write with a revision not
  above the stored one is ignored, so an older computation never overwrites a newer one) and ``_vec`` (the
  feature values packed as little-endian float64, for bulk reads).
- ``ss:{e}:shops`` (set): every shop with state; ``ss:{e}:meta`` (hash): ``latest_month``.
- The service's private state (cells, monthly aggregates, offsets, dirty set, outbox) is described in
  ``services/features/state.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import redis

from shared.features import FEATURE_SETS, get_feature_set

ROOT = "ss"
EPOCH_KEY = f"{ROOT}:epoch"
HEAD_FIELDS = ("eligible", "as_of", "updated_at", "feature_set", "feature_set_version", "revision")
_SNAPSHOT_FIELDS = ("_vec", "eligible", "as_of")
_PIPE_CHUNK = 5000


def prefix_for(epoch: int) -> str:
    """Key prefix of an epoch (``ss:{epoch}:``)."""
    return f"{ROOT}:{epoch}:"


def feature_key(prefix: str, feature_set: str, shop_id: str) -> str:
    return f"{prefix}f:{feature_set}:{shop_id}"


def iso_from_ms(ms: int) -> str:
    """Kafka timestamp (ms since the epoch) -> ISO-8601 UTC with milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def pack_vector(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


class FeatureStore:
    """Read side of the store plus ``wipe``. ``FeatureStore(redis_url)``; every call is one or a few round trips."""

    def __init__(self, redis_url: str | None = None, *, client: redis.Redis | None = None) -> None:
        if client is None and not redis_url:
            raise ValueError("redis_url: required (e.g. redis://127.0.0.1:6379/0)")
        self.redis = client if client is not None else redis.Redis.from_url(redis_url, socket_timeout=30)

    # --- epoch -------------------------------------------------------------------------------------------------
    def epoch(self) -> int:
        return int(self.redis.get(EPOCH_KEY) or 0)

    def prefix(self) -> str:
        return prefix_for(self.epoch())

    # --- reads -------------------------------------------------------------------------------------------------
    def get(self, shop_id: str | int, feature_set: str | None = None) -> dict[str, Any] | None:
        """One retailer's features: ``shop_id``, the head fields (typed), then ``{column: float}``; None if unknown."""
        fs = get_feature_set(feature_set or _default_set())
        raw = self.redis.hgetall(feature_key(self.prefix(), fs.name, str(shop_id)))
        if not raw:
            return None
        row = {k.decode(): v for k, v in raw.items() if k != b"_vec"}
        out: dict[str, Any] = {
            "shop_id": str(shop_id),
            "feature_set": row["feature_set"].decode(),
            "feature_set_version": int(row["feature_set_version"]),
            "revision": int(row["revision"]),
            "eligible": row["eligible"] == b"1",
            "as_of": row["as_of"].decode(),
            "updated_at": row["updated_at"].decode(),
        }
        out.update({col: float(row[col]) for col in fs.columns})
        return out

    def latest_month(self) -> str | None:
        """"YYYY-MM" of the latest month seen in the data, or None for an empty store."""
        value = self.redis.hget(f"{self.prefix()}meta", "latest_month")
        return value.decode() if value else None

    def shop_count(self) -> int:
        return int(self.redis.scard(f"{self.prefix()}shops"))

    def snapshot(self, feature_set: str | None = None, eligible_only: bool = True) -> pd.DataFrame:
        """A consistent snapshot (read in one MULTI/EXEC): index ``shop_id`` sorted; ``eligible`` (only when
        ``eligible_only`` is False), ``as_of``, then the feature columns. ``attrs``: ``as_of`` (latest month of
        the store), ``rows``, ``feature_set``, ``feature_set_version``, ``epoch``."""
        fs = get_feature_set(feature_set or _default_set())
        for _attempt in range(5):
            epoch = self.epoch()
            prefix = prefix_for(epoch)
            shops = sorted(m.decode() for m in self.redis.smembers(f"{prefix}shops"))
            pipe = self.redis.pipeline(transaction=True)
            pipe.get(EPOCH_KEY)
            pipe.hget(f"{prefix}meta", "latest_month")
            pipe.scard(f"{prefix}shops")
            for shop in shops:
                pipe.hmget(feature_key(prefix, fs.name, shop), _SNAPSHOT_FIELDS)
            replies = pipe.execute()
            if int(replies[0] or 0) == epoch and replies[2] == len(shops):
                return _frame(fs, shops, replies[3:], replies[1], epoch, eligible_only)
        raise RuntimeError("snapshot: the store kept changing shape (new shops or a wipe) during 5 attempts")

    def export_csv(self, path: str | Path, feature_set: str | None = None) -> int:
        """Every retailer as one CSV (shop_id, eligible, as_of, feature columns); returns the row count."""
        frame = self.snapshot(feature_set, eligible_only=False)
        frame.to_csv(path)
        return len(frame)

    def dump(self) -> dict[str, Any]:
        """Every key of the current epoch (prefix stripped) -> its content (hash/set as sorted items): what
        "identical stores" means in tests and for ``features rebuild`` checks."""
        prefix = self.prefix()
        keys = sorted(self.redis.scan_iter(match=f"{prefix}*", count=_PIPE_CHUNK))
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        kinds = [k.decode() for k in pipe.execute()]
        readers = {"hash": pipe.hgetall, "set": pipe.smembers, "list": lambda k: pipe.lrange(k, 0, -1)}
        for key, kind in zip(keys, kinds, strict=True):
            readers.get(kind, pipe.get)(key)
        out: dict[str, Any] = {}
        for key, kind, value in zip(keys, kinds, pipe.execute(), strict=True):
            content = sorted(value.items()) if kind == "hash" else sorted(value) if kind == "set" else value
            out[key.decode()[len(prefix) :]] = content
        return out

    # --- admin -------------------------------------------------------------------------------------------------
    def wipe(self) -> int:
        """Empty the store: switch to a new epoch atomically, then delete the old epoch's keys; returns the new
        epoch. Writers still on the old epoch are refused by their scripts and re-read the epoch."""
        old = self.epoch()
        new = int(self.redis.incr(EPOCH_KEY))
        for epoch in range(old, new):
            self._delete_prefix(prefix_for(epoch))
        return new

    def _delete_prefix(self, prefix: str) -> None:
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=f"{prefix}*", count=_PIPE_CHUNK):
            batch.append(key)
            if len(batch) >= _PIPE_CHUNK:
                self.redis.unlink(*batch)
                batch.clear()
        if batch:
            self.redis.unlink(*batch)

    def close(self) -> None:
        self.redis.close()


def _default_set() -> str:
    from shared.config import get_settings

    return get_settings().feature_set


def _frame(
    fs: Any, shops: list[str], rows: list, latest: bytes | None, epoch: int, eligible_only: bool
) -> pd.DataFrame:
    width = len(fs.columns)
    present = [i for i, row in enumerate(rows) if row[0] is not None]
    if present:
        blob = b"".join(rows[i][0] for i in present)
        values = np.frombuffer(blob, dtype="<f8").reshape(len(present), width)
    else:
        values = np.zeros((0, width))
    index = pd.Index([shops[i] for i in present], name="shop_id", dtype=object)
    frame = pd.DataFrame(values.astype(np.float64), index=index, columns=list(fs.columns))
    eligible = np.array([rows[i][1] == b"1" for i in present], dtype=bool)
    frame.insert(0, "as_of", pd.array([rows[i][2].decode() for i in present], dtype=object))
    if eligible_only:
        frame = frame[eligible]
    else:
        frame.insert(0, "eligible", eligible)
    frame.attrs.update(
        as_of=latest.decode() if latest else None, rows=len(frame), feature_set=fs.name,
        feature_set_version=fs.version, epoch=epoch,
    )  # fmt: skip
    return frame


def feature_set_names() -> list[str]:
    return sorted(FEATURE_SETS)


__all__ = ["HEAD_FIELDS", "FeatureStore", "feature_key", "iso_from_ms", "pack_vector", "prefix_for"]
