"""Synthetic FMCG monthly sales in the Kaggle schema, with the planted archetypes as truth.

``generate`` streams ``sales.csv`` (shop_id, product_id, year, month, sales_qty: one row per product, shop and
calendar month, integer quantities) and ``truth.csv`` (shop_id, archetype, archetype_after, changed_at) to a
folder; ``generate_frames`` returns the same data as pandas frames. Output is byte-identical for a seed: the
shop plan comes from one seeded generator and each block of ``BLOCK_SHOPS`` shops from its own child seed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from shared.data.archetypes import NAMES
from shared.data.csv_io import SALES_DTYPES
from shared.data.plan import ShopPlan, World, make_plan
from shared.data.rows import PRODUCTS, block_rows, catalogue_size
from shared.progress import Progress
from shared.schemas import SALES_FIELDS, YEAR_MAX, YEAR_MIN

DEFAULT_END_YEAR = 2025
BLOCK_SHOPS = 2000
TRUTH_FIELDS = ("shop_id", "archetype", "archetype_after", "changed_at")


@dataclass(frozen=True)
class GenerationSummary:
    """What ``generate`` wrote."""

    sales_path: Path
    truth_path: Path
    rows: int
    retailers: int  # including the shops opened at the drift month
    drifted: int  # shops that switched archetype
    first_month: str
    last_month: str
    seconds: float


@dataclass(frozen=True)
class SyntheticData:
    """In-memory result of ``generate_frames``: sales with the reader's dtypes, and the truth."""

    sales: pd.DataFrame
    truth: pd.DataFrame


@dataclass(frozen=True)
class _Setup:
    seed: int
    start_year: int
    months: int
    plan: ShopPlan
    world: World

    def blocks(self) -> Iterator[tuple[int, pl.DataFrame]]:
        """(shops done, sales rows) per block of shops, in shop order."""
        for index, first in enumerate(range(0, self.plan.shops, BLOCK_SHOPS)):
            last = min(first + BLOCK_SHOPS, self.plan.shops)
            rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(1, index)))
            rows = block_rows(rng, self.plan.take(slice(first, last)), self.months, catalogue_size(
                self.world.breadth_scale))
            frame = _sales_frame(rows, np.arange(first + 1, last + 1), self.start_year)
            if self.world.months is not None and self.world.months < self.months:
                cut = self.months - self.world.months  # keep the last world.months months
                frame = frame.filter((pl.col("year") - self.start_year) * 12 + pl.col("month") - 1 >= cut)
            yield last, frame

    def truth(self) -> pl.DataFrame:
        drifted = self.plan.code_after >= 0
        return pl.DataFrame({
            "shop_id": shop_ids(np.arange(1, self.plan.shops + 1)),
            "archetype": [NAMES[c] for c in self.plan.code.tolist()],
            "archetype_after": [NAMES[c] if c >= 0 else None for c in self.plan.code_after.tolist()],
            "changed_at": [_period(self.start_year, t) if d else None
                           for t, d in zip(self.plan.change_t.tolist(), drifted.tolist(), strict=True)],
        }, schema={name: pl.String for name in TRUTH_FIELDS})


def shop_ids(numbers: np.ndarray) -> pl.Series:
    """Shop numbers (1-based) as ids: S000001, S000002, ..."""
    return "S" + pl.Series(numbers).cast(pl.String).str.zfill(6)


def product_ids(numbers: np.ndarray) -> pl.Series:
    """Product numbers (1-based) as ids: P00001, P00002, ..."""
    return "P" + pl.Series(numbers).cast(pl.String).str.zfill(5)


_PRODUCT_IDS = product_ids(np.arange(1, PRODUCTS + 1))


def _sales_frame(rows: dict[str, np.ndarray], shop_numbers: np.ndarray, start_year: int) -> pl.DataFrame:
    return pl.DataFrame({
        "shop_id": shop_ids(shop_numbers).gather(rows["shop"]),
        "product_id": _PRODUCT_IDS.gather(rows["product"]),
        "year": rows["t"] // 12 + start_year,
        "month": rows["t"] % 12 + 1,
        "sales_qty": rows["qty"],
    })


def _period(start_year: int, t: int) -> str:
    return f"{start_year + t // 12:04d}-{t % 12 + 1:02d}"


def _setup(retailers: int, years: int, seed: int, drift_fraction: float, drift_month: str | None,
           end_year: int, world: World | None = None) -> _Setup:
    """Validate the arguments (errors name the argument) and draw the shop plan."""
    if isinstance(retailers, bool) or not isinstance(retailers, int) or retailers < 1:
        raise ValueError(f"retailers: must be a positive integer, got {retailers!r}")
    if isinstance(years, bool) or not isinstance(years, int) or years < 1:
        raise ValueError(f"years: must be a positive integer, got {years!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: must be a non-negative integer, got {seed!r}")
    start_year = end_year - years + 1
    if not (start_year >= YEAR_MIN and end_year <= YEAR_MAX):
        raise ValueError(f"end_year: years {start_year}-{end_year} must lie within {YEAR_MIN}-{YEAR_MAX}")
    if not 0.0 <= drift_fraction <= 1.0:
        raise ValueError(f"drift_fraction: must be between 0 and 1, got {drift_fraction!r}")
    months = 12 * years
    drift_t = None
    if drift_month is not None:
        match = re.fullmatch(r"(\d{4})-(\d{2})", drift_month)
        if not match or not 1 <= int(match[2]) <= 12:
            raise ValueError(f"drift_month: must be YYYY-MM, got {drift_month!r}")
        drift_t = (int(match[1]) - start_year) * 12 + int(match[2]) - 1
        if not 12 <= drift_t < months:
            raise ValueError(f"drift_month: must lie between {_period(start_year, 12)} and "
                             f"{_period(start_year, months - 1)} (12 months of history first), got {drift_month}")
        if drift_fraction == 0.0:
            raise ValueError("drift_fraction: must be above 0 when drift_month is given")
    elif drift_fraction > 0.0:
        raise ValueError("drift_month: required when drift_fraction is above 0")
    world = world or World()
    if world.months is not None and world.months > months:
        raise ValueError(f"months: must be at most 12 x years = {months}, got {world.months}")
    plan = make_plan(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,))), retailers, months,
                     drift_fraction, drift_t, world)
    return _Setup(seed, start_year, months, plan, world)


def generate(retailers: int, years: int, seed: int, out_dir: str | Path, drift_fraction: float = 0.0,
             drift_month: str | None = None, end_year: int = DEFAULT_END_YEAR,
             progress: Progress | None = None, world: World | None = None) -> GenerationSummary:
    """Write ``out_dir/sales.csv`` and ``out_dir/truth.csv`` for ``retailers`` shops over the ``years`` calendar
    years ending with ``end_year`` (a harder ``world`` if given); ``progress("generate", shops done, shops)`` is called
    after each block of shops."""
    began = time.perf_counter()
    setup = _setup(retailers, years, seed, drift_fraction, drift_month, end_year, world)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sales_path, truth_path = out / "sales.csv", out / "truth.csv"
    rows = 0
    with sales_path.open("wb") as handle:
        handle.write((",".join(SALES_FIELDS) + "\n").encode())
        for done, frame in setup.blocks():
            frame.write_csv(handle, include_header=False)
            rows += frame.height
            if progress is not None:
                progress("generate", done, setup.plan.shops)
    setup.truth().write_csv(truth_path)
    return GenerationSummary(
        sales_path=sales_path, truth_path=truth_path, rows=rows, retailers=setup.plan.shops,
        drifted=int((setup.plan.code_after >= 0).sum()),
        first_month=_period(setup.start_year, setup.months - (setup.world.months or setup.months)),
        last_month=_period(setup.start_year, setup.months - 1), seconds=time.perf_counter() - began)


def generate_frames(retailers: int, years: int, seed: int, drift_fraction: float = 0.0,
                    drift_month: str | None = None, end_year: int = DEFAULT_END_YEAR,
                    world: World | None = None) -> SyntheticData:
    """The data ``generate`` would write, as pandas frames (sales with the dtypes of ``read_sales_csv``)."""
    setup = _setup(retailers, years, seed, drift_fraction, drift_month, end_year, world)
    sales = pl.concat([frame for _, frame in setup.blocks()])
    truth = setup.truth()
    return SyntheticData(
        sales=pd.DataFrame({c: sales[c].to_numpy() for c in SALES_FIELDS}).astype(SALES_DTYPES),
        truth=pd.DataFrame({c: truth[c].to_numpy() for c in TRUTH_FIELDS}).astype("str"),
    )
