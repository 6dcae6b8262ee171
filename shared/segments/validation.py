"""Input checks shared by matching and assignment: bad input fails with the field and the problem named."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared.segments.lineage import parse_segment_id


def shop(value: object) -> object:
    """A shop_id as plain Python (``2``, not ``np.int64(2)``) for error messages."""
    return value.item() if isinstance(value, np.generic) else value


def _require_series(value: object, name: str) -> pd.Series:
    if not isinstance(value, pd.Series):
        raise ValueError(f"{name}: must be a pandas Series indexed by shop_id, got {type(value).__name__}")
    duplicated = value.index[value.index.duplicated()]
    if len(duplicated):
        raise ValueError(f"{name}: shop_id {shop(duplicated[0])!r} appears more than once")
    if value.index.hasnans:
        raise ValueError(f"{name}: shop_id must not be missing (NaN/None in the index)")
    return value


def validate_labels(labels: object, name: str) -> pd.Series:
    """Cluster labels as int64: integers >= -1 (-1 is noise); integral floats are accepted."""
    series = _require_series(labels, name)
    if series.dtype == object:
        series = series.infer_objects()
    if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(series.dtype):
        raise ValueError(f"{name}: cluster labels must be integers (-1 for noise), got dtype {series.dtype}")
    values = series.to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values != np.round(values)) | (values < -1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: shop_id {shop(series.index[i])!r} has label {shop(series.iloc[i])!r}; "
                         "labels must be integers >= -1 (-1 is noise)")
    return pd.Series(values.astype(np.int64), index=series.index, name=series.name)


def validate_previous(previous: object) -> pd.Series:
    """Previous segments as an object Series of segment ids, with None where noise or unassigned."""
    if previous is None:
        return pd.Series([], dtype=object)
    series = _require_series(previous, "previous")
    values = series.to_numpy(dtype=object, copy=True)
    null = pd.isna(values)
    values[null] = None
    for segment in pd.unique(values[~null]).tolist():
        try:
            parse_segment_id(segment)
        except ValueError as exc:
            raise ValueError(f"previous: {exc}") from None
    return pd.Series(values, index=series.index, dtype=object)


def validate_strengths(strengths: object, labels: pd.Series, name: str) -> pd.Series:
    """Membership strengths in [0, 1] for exactly the shops of ``labels``, aligned to them."""
    series = _require_series(strengths, name)
    missing = labels.index.difference(series.index)
    if len(missing):
        raise ValueError(f"{name}: no strength for shop_id {shop(missing[0])!r} (it has a label)")
    extra = series.index.difference(labels.index)
    if len(extra):
        raise ValueError(f"{name}: shop_id {shop(extra[0])!r} has a strength but no label")
    if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(series.dtype):
        raise ValueError(f"{name}: strengths must be numbers in [0, 1], got dtype {series.dtype}")
    aligned = series.reindex(labels.index).to_numpy(dtype=float)
    bad = ~np.isfinite(aligned) | (aligned < 0) | (aligned > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: shop_id {shop(labels.index[i])!r} has strength {shop(aligned[i])!r}; "
                         "strengths must be finite numbers in [0, 1]")
    return pd.Series(aligned, index=labels.index)
