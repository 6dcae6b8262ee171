"""Sales data: the synthetic generator (planted archetypes) and the reader of Kaggle-schema CSV files."""

from shared.data.csv_io import (
    SALES_DTYPES,
    SalesBatch,
    SalesCSVError,
    collect_sales_csv,
    iter_sales_batches,
    iter_sales_chunks,
    read_sales_csv,
)
from shared.data.generator import GenerationSummary, SyntheticData, generate, generate_frames

__all__ = [
    "SALES_DTYPES",
    "GenerationSummary",
    "SalesBatch",
    "SalesCSVError",
    "SyntheticData",
    "collect_sales_csv",
    "generate",
    "generate_frames",
    "iter_sales_batches",
    "iter_sales_chunks",
    "read_sales_csv",
]
