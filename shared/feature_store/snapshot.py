"""``FeatureStore.snapshot``: every retailer's vector of one feature set, read consistently."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shared.feature_store.layout import EPOCH_KEY, period, set_code, vector_fields

_ATTEMPTS = 5


def read_snapshot(store: Any, fs: Any, eligible_only: bool) -> pd.DataFrame:
    """Retry until the retailers listed by SCAN are exactly those each group counts (no retailer appeared
    between the listing and the read) and the epoch did not change."""
    fields = [set_code(fs.name), "a", *vector_fields(fs.name, len(fs.columns))]
    for _attempt in range(_ATTEMPTS):
        epoch = store.epoch()
        members = store.members(epoch)
        replies = _read(store, epoch, members, fields)
        if replies is not None:
            shops = [shop for group in members for shop in group]
            rows = [row for group in replies for row in group]
            latest = max((int(v) for v in _latest(store, epoch) if v is not None), default=None)
            return _frame(fs, shops, rows, latest, epoch, eligible_only)
    raise RuntimeError("snapshot: the store kept changing shape (new shops or a wipe) during 5 attempts")


def _read(store: Any, epoch: int, members: list[list[str]], fields: list[str]) -> list[list] | None:
    """Per group: its rows; None when a group's count or the epoch moved during the read."""
    layout, client = store.layout, store.redis
    if store.cluster:
        out = []
        for g, shops in enumerate(members):
            pipe = client.pipeline(transaction=True)
            pipe.hget(layout.group_key(epoch, g, "g"), "n")
            for shop in shops:
                pipe.hmget(f"{layout.group_prefix(epoch, g)}r:{shop}", fields)
            replies = pipe.execute()
            if int(replies[0] or 0) != len(shops):
                return None
            out.append(replies[1:])
        return out if int(client.get(EPOCH_KEY) or 0) == epoch else None
    pipe = client.pipeline(transaction=True)
    pipe.get(EPOCH_KEY)
    for g, shops in enumerate(members):
        pipe.hget(layout.group_key(epoch, g, "g"), "n")
        for shop in shops:
            pipe.hmget(f"{layout.group_prefix(epoch, g)}r:{shop}", fields)
    replies = pipe.execute()
    if int(replies[0] or 0) != epoch:
        return None
    out, at = [], 1
    for shops in members:
        if int(replies[at] or 0) != len(shops):
            return None
        out.append(replies[at + 1 : at + 1 + len(shops)])
        at += 1 + len(shops)
    return out


def _latest(store: Any, epoch: int) -> list:
    pipe = store.redis.pipeline(transaction=False)
    for g in range(store.layout.groups):
        pipe.hget(store.layout.group_key(epoch, g, "g"), "l")
    return pipe.execute()


def _frame(fs: Any, shops: list[str], rows: list, latest: int | None, epoch: int, eligible_only: bool) -> pd.DataFrame:
    width = len(fs.columns)
    present = [i for i, row in enumerate(rows) if row[0] is not None]
    order = sorted(present, key=lambda i: shops[i])
    if order:
        values = np.frombuffer(b"".join(b"".join(rows[i][2:]) for i in order), dtype="<f8").reshape(len(order), width)
    else:
        values = np.zeros((0, width))
    index = pd.Index([shops[i] for i in order], name="shop_id", dtype=object)
    frame = pd.DataFrame(values.astype(np.float64), index=index, columns=list(fs.columns))
    eligible = np.array([int(rows[i][0]) % 2 == 1 for i in order], dtype=bool)
    frame.insert(0, "as_of", pd.array([period(int(rows[i][1])) for i in order], dtype=object))
    if eligible_only:
        frame = frame[eligible]
    else:
        frame.insert(0, "eligible", eligible)
    frame.attrs.update(
        as_of=None if latest is None else period(latest), rows=len(frame), feature_set=fs.name,
        feature_set_version=fs.version, epoch=epoch,
    )
    return frame
