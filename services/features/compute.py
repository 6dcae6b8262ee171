"""Feature hashes of a batch of shops from their monthly aggregates (vectorised: one ``compute_batch`` per set).

The same code path as the batch pipeline (``features_from_monthly``), so streamed and batch features agree; a
shop's row does not depend on which other shops share the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.features.state import ShopMonthsBatch
from shared.feature_store import iso_from_ms, pack_vector
from shared.features import EligibilityRule, FeatureSet, features_from_monthly


@dataclass(frozen=True)
class Update:
    """What changed for one shop in one feature set (the ``features.updated`` payload)."""

    shop_id: str
    feature_set: str
    as_of: str
    eligible: bool

    def as_event(self) -> dict[str, object]:
        return {"shop_id": self.shop_id, "feature_set": self.feature_set, "as_of": self.as_of,
                "eligible": self.eligible}  # fmt: skip


def feature_entries(
    batch: ShopMonthsBatch, feature_sets: list[FeatureSet], rule: EligibilityRule
) -> tuple[list[tuple[str, int, list[tuple[str, list]]]], list[Update]]:
    """(WRITE script entries, updates) for every shop of ``batch`` and every feature set."""
    panel = batch.panel
    shops = [str(s) for s in panel.shops]
    hashes: list[list[tuple[str, list]]] = [[] for _ in shops]
    updates: list[Update] = []
    stamps = [iso_from_ms(int(ms)) for ms in batch.timestamps]
    for fs in feature_sets:
        frame = features_from_monthly(panel, fs, rule)
        values = frame[list(fs.columns)].to_numpy(dtype=np.float64)
        eligible = frame["eligible"].to_numpy(dtype=bool)
        as_of = frame["as_of"].tolist()
        head = ("feature_set", fs.name, "feature_set_version", fs.version)
        for i, shop in enumerate(shops):
            row = values[i]
            pairs: list = [
                *head, "revision", int(batch.revisions[i]), "eligible", "1" if eligible[i] else "0",
                "as_of", as_of[i], "updated_at", stamps[i], "_vec", pack_vector(row),
            ]  # fmt: skip
            for col, value in zip(fs.columns, row.tolist(), strict=True):
                pairs.extend((col, repr(value)))
            hashes[i].append((fs.name, pairs))
            updates.append(Update(shop, fs.name, as_of[i], bool(eligible[i])))
    entries = [(shop, int(batch.revisions[i]), hashes[i]) for i, shop in enumerate(shops)]
    return entries, updates
