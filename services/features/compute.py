"""Feature hashes of a batch of shops from their monthly aggregates (vectorised: one ``compute_batch`` per set).

The same code path as the batch pipeline (``features_from_monthly``), so streamed and batch features agree; a
shop's row does not depend on which other shops share the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.feature_store.layout import encode_entries
from shared.feature_store.writer import ShopMonthsBatch
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
                "eligible": self.eligible}


def feature_entries(
    batch: ShopMonthsBatch, feature_sets: list[FeatureSet], rule: EligibilityRule
) -> tuple[list[tuple[str, int, list]], list[Update]]:
    """(WRITE entries, updates) for every shop of ``batch`` and every feature set."""
    shops = [str(s) for s in batch.panel.shops]
    frames = {fs.name: features_from_monthly(batch.panel, fs, rule) for fs in feature_sets}
    updates = [Update(shop, name, as_of, bool(eligible)) for name, frame in frames.items()
               for shop, as_of, eligible in zip(shops, frame["as_of"].tolist(), frame["eligible"].tolist(),
                                                strict=True)]
    return encode_entries(frames, shops, batch.revisions, batch.timestamps), updates
