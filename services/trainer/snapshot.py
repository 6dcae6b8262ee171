"""The training snapshot: every eligible retailer's feature vector of one feature set, read once from Redis.

The feature store (:mod:`shared.feature_store`) returns one consistent snapshot; this module turns it into what
the fit needs (numeric feature columns only, rows in canonical shop_id order) and records its as-of month (the
latest month any retailer in it has data for) and row count.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from shared.model.fit import canonical_order
from shared.storage.models import utcnow

SnapshotSource = Callable[[str], pd.DataFrame]
"""``source(feature_set)`` -> eligible retailers' rows (index shop_id, an ``as_of`` column, feature columns)."""

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_NON_FEATURE = ("as_of", "eligible", "updated_at", "feature_set", "version")


class SnapshotError(ValueError):
    """The feature store's snapshot cannot be trained on (empty, malformed); the message says why."""


@dataclass(frozen=True)
class Snapshot:
    """Features to fit on (canonical order), the data's as-of month, and when the snapshot was taken."""

    feature_set: str
    features: pd.DataFrame
    data_as_of: str
    taken_at: datetime
    source: dict[str, Any] = field(default_factory=dict)
    """What the feature store said about the snapshot (``frame.attrs``: feature_set_version, epoch, as_of)."""

    @property
    def rows(self) -> int:
        return len(self.features)


def feature_store_source(redis_url: str, cluster: bool = False, groups: int | None = None) -> SnapshotSource:
    """The production source: ``FeatureStore(redis_url).snapshot(feature_set, eligible_only=True)``."""
    from shared.feature_store import FeatureStore

    store = FeatureStore(redis_url, cluster=cluster, groups=groups)
    return lambda feature_set: store.snapshot(feature_set, eligible_only=True)


SettleCheck = Callable[[], Any]
"""``check()`` -> an object with ``settled`` (bool) and ``reason()``, e.g.
:class:`shared.features.settlement.StoreProgress`."""


def feature_store_settlement(redis_url: str, cluster: bool = False, groups: int | None = None) -> SettleCheck:
    """The production check: the feature store's progress (stream caught up, no recompute pending)."""
    from shared.feature_store import FeatureStore
    from shared.feature_store.writer import StoreWriter
    from shared.features.settlement import store_progress

    store = FeatureStore(redis_url, cluster=cluster, groups=groups)
    writer = StoreWriter(store.redis, store.layout)
    return lambda: store_progress(writer, store.epoch())


async def wait_settled(check: SettleCheck, deadline_seconds: float, poll_seconds: float = 0.5) -> dict[str, Any]:
    """Wait until the store is settled or the deadline passes; ``{"settled", "waited_seconds", "reason"}``."""
    import asyncio
    import time

    started = time.monotonic()
    while True:
        progress = await asyncio.to_thread(check)
        waited = round(time.monotonic() - started, 3)
        if progress.settled:
            return {"settled": True, "waited_seconds": waited, "reason": None}
        if waited >= deadline_seconds:
            return {"settled": False, "waited_seconds": waited, "reason": progress.reason()}
        await asyncio.sleep(poll_seconds)


def prepare_snapshot(frame: pd.DataFrame, feature_set: str, taken_at: datetime | None = None) -> Snapshot:
    """Validate a feature-store snapshot and turn it into a :class:`Snapshot` (errors name the problem)."""
    if not isinstance(frame, pd.DataFrame):
        raise SnapshotError(f"snapshot: expected a DataFrame from the feature store, got {type(frame).__name__}")
    if frame.empty:
        raise SnapshotError(f"snapshot: no eligible retailers in the feature store for feature set {feature_set!r}")
    if "as_of" not in frame.columns:
        raise SnapshotError("snapshot: column 'as_of' (YYYY-MM of each retailer's latest month) is missing")
    as_of = frame["as_of"].astype(str)
    bad = as_of[~as_of.str.match(_MONTH)]
    if len(bad):
        example = f"shop {bad.index[0]!r}: {bad.iloc[0]!r}"
        raise SnapshotError(f"as_of: {len(bad)} row(s) are not YYYY-MM months, e.g. {example}")
    if "eligible" in frame.columns and not frame["eligible"].astype(bool).all():
        frame = frame.loc[frame["eligible"].astype(bool)]
        as_of = as_of.loc[frame.index]
    features = frame.drop(columns=[c for c in _NON_FEATURE if c in frame.columns])
    if features.empty or features.shape[1] == 0:
        raise SnapshotError(f"snapshot: no feature columns for feature set {feature_set!r}")
    return Snapshot(
        feature_set=feature_set,
        features=canonical_order(features),
        data_as_of=str(as_of.max()),
        taken_at=taken_at or utcnow(),
        source={k: v for k, v in frame.attrs.items() if isinstance(v, (str, int, float, bool)) or v is None},
    )


def take_snapshot(source: SnapshotSource, feature_set: str) -> Snapshot:
    """Read one snapshot from ``source`` and prepare it; ``taken_at`` is the moment before the read."""
    taken_at = utcnow()
    return prepare_snapshot(source(feature_set), feature_set, taken_at)
