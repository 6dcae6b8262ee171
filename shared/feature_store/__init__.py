"""The live feature store in Redis (one owner of its keyspace): ``layout`` (keys, encodings, epoch switch),
``scripts`` (its Lua), ``store`` (reads, wipe), ``writer`` (the features service's write side)."""

from shared.feature_store.layout import EPOCH_KEY, Layout, LayoutError, iso_from_ms
from shared.feature_store.store import FeatureStore

__all__ = ["EPOCH_KEY", "FeatureStore", "Layout", "LayoutError", "iso_from_ms"]
