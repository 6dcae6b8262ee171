"""Batch features of a sales CSV too large for memory: read in chunks, spilled to disk in partitions of shops.

Every validated chunk (the strict reader, so errors name the same line) has its ids coded to integers in order
of first appearance; each row goes to the spill file of partition ``shop code % partitions`` (19 bytes a row).
A partition then holds every row of its shops in file order, so the replace rule, the monthly cells and the
per-shop features computed one partition at a time equal the in-memory ones (features are per shop); only one
partition's rows and the small per-shop results are in memory at once.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared.data.csv_io import DEFAULT_CHUNKSIZE, iter_sales_chunks
from shared.features.base import FeatureSet
from shared.features.build import features_from_monthly
from shared.features.eligibility import EligibilityRule
from shared.features.monthly import monthly_panel
from shared.features.profile import profile_summary, shop_profile

SPILL_ROW = np.dtype([("shop", "<i4"), ("product", "<i4"), ("year", "<i2"), ("month", "<i1"), ("qty", "<f8")])


class _IdCoder:
    """Ids -> dense integer codes in order of first appearance (one dict lookup per distinct id of a chunk)."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def encode(self, values: pd.Series) -> np.ndarray:
        local, uniques = pd.factorize(values, sort=False)
        table = np.fromiter((self.codes.setdefault(u, len(self.codes)) for u in uniques.tolist()), np.int64,
                            len(uniques))
        return table[local]

    def names(self) -> np.ndarray:
        return np.array(list(self.codes), dtype=object)


def partitions_for(path: str | Path, partition_bytes: int) -> int:
    """How many partitions a CSV of this size is read in (1: in memory)."""
    return max(1, math.ceil(Path(path).stat().st_size / partition_bytes))


def _spill(path: Path, folder: Path, partitions: int, chunksize: int) -> _IdCoder:
    """Write every row of the CSV to its partition's file; returns the shop coder (code -> shop_id)."""
    shops, products = _IdCoder(), _IdCoder()
    files = [(folder / f"part-{p:04d}.bin").open("ab") for p in range(partitions)]
    try:
        for chunk in iter_sales_chunks(path, chunksize):
            rows = np.empty(len(chunk), SPILL_ROW)
            rows["shop"], rows["product"] = shops.encode(chunk["shop_id"]), products.encode(chunk["product_id"])
            rows["year"], rows["month"], rows["qty"] = chunk["year"], chunk["month"], chunk["sales_qty"]
            part = rows["shop"] % partitions
            order = np.argsort(part, kind="stable")  # keeps file order within a partition
            bounds = np.searchsorted(part[order], np.arange(partitions + 1))
            for p in np.flatnonzero(np.diff(bounds)):
                rows[order[bounds[p]:bounds[p + 1]]].tofile(files[p])
    finally:
        for handle in files:
            handle.close()
    return shops


def _partition_features(rows: np.ndarray, names: np.ndarray, feature_set: str | FeatureSet,
                        rule: EligibilityRule) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Features (index shop_id) and per-shop profile of one partition's rows."""
    sales = pd.DataFrame({"shop_id": rows["shop"].astype(np.int64), "product_id": rows["product"].astype(np.int64),
                          "year": rows["year"].astype(np.int64), "month": rows["month"].astype(np.int64),
                          "sales_qty": rows["qty"]})
    panel = monthly_panel(sales)
    features = features_from_monthly(panel, feature_set, rule)
    features.index = pd.Index(names[features.index.to_numpy()], name="shop_id")
    return features, shop_profile(panel, rule)


def features_from_csv_partitioned(
    path: str | Path, feature_set: str | FeatureSet, rule: EligibilityRule, partitions: int,
    chunksize: int = DEFAULT_CHUNKSIZE, spill_dir: str | Path | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(features of every shop sorted by shop_id, data profile) of a sales CSV, ``partitions`` at a time."""
    with tempfile.TemporaryDirectory(prefix="stableseg-spill-", dir=spill_dir) as tmp:
        folder = Path(tmp)
        names = _spill(Path(path), folder, partitions, chunksize).names()
        frames, profiles = [], []
        for p in range(partitions):
            rows = np.fromfile(folder / f"part-{p:04d}.bin", SPILL_ROW)
            (folder / f"part-{p:04d}.bin").unlink()
            if len(rows):
                features, profile = _partition_features(rows, names, feature_set, rule)
                frames.append(features)
                profiles.append(profile)
            del rows
    if not frames:
        raise ValueError("sales CSV: no data rows")
    features = pd.concat(frames).sort_index(kind="stable")
    shops = {key: np.concatenate([p[key] for p in profiles]) for key in profiles[0]}
    return features, profile_summary(shops, rule)
