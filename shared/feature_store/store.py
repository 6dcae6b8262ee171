"""The live feature store in Redis: written by the features service, read by the trainer, assigner and CLI.

One hash per retailer holds its cells, monthly state and every stored feature set, packed small enough for
Redis' compact hash encoding (layout: :mod:`shared.feature_store.layout`). ``wipe()`` switches to a new epoch
atomically for readers and fences every slot group against writers of the old epoch, then deletes the old keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared.feature_store.layout import (
    EPOCH_KEY,
    Layout,
    check_layout,
    iso_from_ms,
    period,
    set_code,
    switch_epoch,
    vector_fields,
)
from shared.features import get_feature_set
from shared.redis_client import is_cluster, redis_client

_SCAN = 5000


class FeatureStore:
    """Read side of the store plus ``wipe``. ``FeatureStore(redis_url)``, or ``client=`` an existing client;
    ``cluster`` and ``groups`` default to the settings."""

    def __init__(self, redis_url: str | None = None, *, client: Any = None, cluster: bool | None = None,
                 groups: int | None = None) -> None:
        settings = _settings() if cluster is None or groups is None else None
        cluster = settings.redis_cluster if cluster is None else cluster
        if client is None:
            if not redis_url:
                raise ValueError("redis_url: required (e.g. redis://127.0.0.1:6379/0)")
            client = redis_client(redis_url, cluster=cluster, socket_timeout=30)
        self.redis = client
        self.cluster = is_cluster(client)
        self.layout = Layout(groups if groups is not None else settings.feature_store_slot_groups)
        self._checked = False

    # --- epoch -------------------------------------------------------------------------------------------------
    def epoch(self) -> int:
        if not self._checked:
            check_layout(self.redis, self.layout)
            self._checked = True
        return int(self.redis.get(EPOCH_KEY) or 0)

    # --- reads -------------------------------------------------------------------------------------------------
    def get(self, shop_id: str | int, feature_set: str | None = None) -> dict[str, Any] | None:
        """One retailer's features: ``shop_id``, the head fields (typed), then ``{column: float}``; None if unknown."""
        fs = get_feature_set(feature_set or _settings().feature_set)
        code, chunks = set_code(fs.name), vector_fields(fs.name, len(fs.columns))
        raw = self.redis.hmget(self.layout.record(self.epoch(), str(shop_id)), [code, "a", "u", "w", *chunks])
        if raw[0] is None:
            return None
        head = int(raw[0])
        values = np.frombuffer(b"".join(raw[4:]), dtype="<f8")
        out: dict[str, Any] = {
            "shop_id": str(shop_id), "feature_set": fs.name, "feature_set_version": head // 2,
            "revision": int(raw[3]), "eligible": bool(head % 2), "as_of": period(int(raw[1])),
            "updated_at": iso_from_ms(int(raw[2])),
        }
        out.update({col: float(v) for col, v in zip(fs.columns, values, strict=True)})
        return out

    def rows(self, shops: list[str], feature_set: str) -> tuple[pd.DataFrame, list[str]]:
        """Feature rows of the ``shops`` the store holds as eligible (one pipeline; columns of the set), and the
        others."""
        fs = get_feature_set(feature_set)
        epoch = self.epoch()
        fields = [set_code(fs.name), *vector_fields(fs.name, len(fs.columns))]
        pipe = self.redis.pipeline(transaction=False)
        for shop in shops:
            pipe.hmget(self.layout.record(epoch, shop), fields)
        found, blobs, missing = [], [], []
        for shop, reply in zip(shops, pipe.execute(), strict=True):
            if reply[0] is None or int(reply[0]) % 2 == 0:
                missing.append(shop)
                continue
            found.append(shop)
            blobs.append(b"".join(reply[1:]))
        values = np.frombuffer(b"".join(blobs), dtype="<f8").reshape(len(found), len(fs.columns))
        return pd.DataFrame(values.copy(), columns=list(fs.columns),
                            index=pd.Index(found, name="shop_id", dtype=object)), missing

    def latest_month(self) -> str | None:
        """"YYYY-MM" of the latest month seen in the data, or None for an empty store."""
        epoch = self.epoch()
        pipe = self.redis.pipeline(transaction=False)
        for g in range(self.layout.groups):
            pipe.hget(self.layout.group_key(epoch, g, "g"), "l")
        latest = max((int(v) for v in pipe.execute() if v is not None), default=None)
        return None if latest is None else period(latest)

    def shop_count(self) -> int:
        epoch = self.epoch()
        pipe = self.redis.pipeline(transaction=False)
        for g in range(self.layout.groups):
            pipe.hget(self.layout.group_key(epoch, g, "g"), "n")
        return sum(int(v or 0) for v in pipe.execute())

    def members(self, epoch: int) -> list[list[str]]:
        """Every retailer of the epoch, per slot group (SCAN over every node)."""
        groups: list[list[str]] = [[] for _ in range(self.layout.groups)]
        for key in self.redis.scan_iter(match=self.layout.records_pattern(epoch), count=_SCAN):
            group, shop = self.layout.split_record(key)
            groups[group].append(shop)
        return [sorted(g) for g in groups]

    def snapshot(self, feature_set: str | None = None, eligible_only: bool = True) -> pd.DataFrame:
        """A consistent snapshot: index ``shop_id`` sorted; ``eligible`` (only when ``eligible_only`` is False),
        ``as_of``, then the feature columns. ``attrs``: ``as_of`` (latest month of the store), ``rows``,
        ``feature_set``, ``feature_set_version``, ``epoch``. On one Redis every group is read in one MULTI/EXEC; on
        a cluster each slot group is (a group is consistent, the groups are read one after another)."""
        from shared.feature_store.snapshot import read_snapshot

        fs = get_feature_set(feature_set or _settings().feature_set)
        return read_snapshot(self, fs, eligible_only)

    def export_csv(self, path: str | Path, feature_set: str | None = None) -> int:
        """Every retailer as one CSV (shop_id, eligible, as_of, feature columns); returns the row count."""
        frame = self.snapshot(feature_set, eligible_only=False)
        frame.to_csv(path)
        return len(frame)

    def dump(self) -> dict[str, Any]:
        """Every key of the current epoch (prefix stripped) -> its content (hash/set as sorted items): what
        "identical stores" means in tests and for ``features rebuild`` checks."""
        prefix = f"ss:{self.epoch()}:"
        keys = sorted(self.redis.scan_iter(match=f"{prefix}*", count=_SCAN))
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        kinds = [k.decode() for k in pipe.execute()]
        pipe = self.redis.pipeline(transaction=False)
        readers = {"hash": pipe.hgetall, "set": pipe.smembers, "list": lambda k: pipe.lrange(k, 0, -1)}
        for key, kind in zip(keys, kinds, strict=True):
            readers.get(kind, pipe.get)(key)
        out: dict[str, Any] = {}
        for key, kind, value in zip(keys, kinds, pipe.execute(), strict=True):
            content = sorted(value.items()) if kind == "hash" else sorted(value) if kind == "set" else value
            out[key.decode()[len(prefix) :]] = content
        return out

    # --- the features service's progress (offsets, recompute and month-close backlogs) ----------------------
    def offsets(self) -> dict[str, tuple[int, str]]:
        from shared.feature_store.writer import StoreWriter

        return StoreWriter(self.redis, self.layout).offsets(self.epoch())

    def dirty_count(self) -> int:
        from shared.feature_store.writer import StoreWriter

        return StoreWriter(self.redis, self.layout).dirty_count(self.epoch())

    def outbox_length(self) -> int:
        return int(self.redis.llen(self.layout.months_key(self.epoch(), "outbox")))

    # --- admin -------------------------------------------------------------------------------------------------
    def wipe(self) -> int:
        """Empty the store (a new epoch, see :func:`~shared.feature_store.layout.switch_epoch`); returns it."""
        self._checked = True
        return switch_epoch(self.redis, self.layout)

    def close(self) -> None:
        self.redis.close()


def _settings() -> Any:
    from shared.config import get_settings

    return get_settings()


__all__ = ["FeatureStore"]
