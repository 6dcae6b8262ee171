"""Feature benchmarks (run on demand, not part of the test suite).

    .venv/bin/python bench/bench_features.py                # batch: pandas reference vs build_features, 5M rows
    .venv/bin/python bench/bench_features.py --one          # compute_one per call on a 5-year shop
    .venv/bin/python bench/bench_features.py --quality      # downstream ARI / noise / size leak on planted data

Batch target: ``build_features`` >= 5x faster than the pandas version of the seed's recipe (written once, in
``tests/shared/features/test_features_reference.py``) on the same 5 million seeded rows, with equal results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.features import FEATURE_SETS, EligibilityRule, ShopMonths, build_features  # noqa: E402


def synthetic_sales(
    rows: int, seed: int, shops: int = 20_000, products: int = 3_000, string_ids: bool = False
) -> pd.DataFrame:
    """``rows`` seeded sales records over 5 years, ~1% of them later corrections of an earlier key; ids are
    integers, or strings like the CSV's ("S000042", "P00007") with ``string_ids``."""
    rng = np.random.default_rng(seed)
    fresh = rows - rows // 100
    frame = pd.DataFrame(
        {
            "shop_id": rng.integers(1, shops + 1, fresh),
            "product_id": rng.integers(1, products + 1, fresh),
            "year": rng.integers(2019, 2024, fresh),
            "month": rng.integers(1, 13, fresh),
            "sales_qty": rng.poisson(20, fresh).astype(np.float64),
        }
    )
    corrections = frame.iloc[rng.integers(0, fresh, rows - fresh)].assign(
        sales_qty=rng.poisson(20, rows - fresh).astype(np.float64)
    )
    sales = pd.concat([frame, corrections], ignore_index=True)
    if string_ids:
        for column, prefix, width in (("shop_id", "S", 6), ("product_id", "P", 5)):
            labels = np.array([f"{prefix}{i:0{width}d}" for i in range(sales[column].max() + 1)], dtype=object)
            sales[column] = pd.array(labels[sales[column].to_numpy()], dtype="str")
    return sales


def timed(fn, *args, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_batch(rows: int, seed: int, repeat: int, string_ids: bool) -> dict:
    from tests.shared.features.test_features_reference import reference_build

    print(f"generating {rows:,} rows (seed {seed}, {'string' if string_ids else 'integer'} ids) ...", flush=True)
    sales = synthetic_sales(rows, seed, string_ids=string_ids)
    print("pandas reference (seed recipe) ...", flush=True)
    t_ref, ref = timed(reference_build, sales, repeat=repeat)
    print("build_features seed-v1 ...", flush=True)
    t_ours, ours = timed(build_features, sales, "seed-v1", EligibilityRule(), repeat=repeat)
    cols = list(FEATURE_SETS["seed-v1"].columns)
    np.testing.assert_allclose(ours[cols].to_numpy(), ref[cols].to_numpy(), rtol=1e-9, atol=1e-9)
    assert ours["eligible"].tolist() == ref["eligible"].tolist()
    t_v2, _ = timed(build_features, sales, "behaviour-v2", EligibilityRule(), repeat=repeat)
    return {
        "rows": rows,
        "string_ids": string_ids,
        "shops": len(ours),
        "pandas_reference_s": round(t_ref, 3),
        "build_features_seed_v1_s": round(t_ours, 3),
        "speedup": round(t_ref / t_ours, 2),
        "build_features_behaviour_v2_s": round(t_v2, 3),
        "results_equal": True,
    }


def bench_one(calls: int) -> dict:
    rng = np.random.default_rng(0)
    year, month = np.repeat(np.arange(2019, 2024), 12), np.tile(np.arange(1, 13), 5)
    qty, uniq = rng.gamma(2.0, 100.0, 60), rng.integers(1, 30, 60)
    out = {}
    for name, fs in FEATURE_SETS.items():
        shop = ShopMonths(year, month, qty, uniq)
        per_call = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(calls):
                fs.compute_one(shop)
            per_call.append((time.perf_counter() - t0) / calls)
        t0 = time.perf_counter()
        for _ in range(calls):
            fs.compute_one(ShopMonths(year, month, qty, uniq))
        out[name] = {
            "compute_one_us": round(min(per_call) * 1e6, 1),
            "with_shopmonths_us": round((time.perf_counter() - t0) / calls * 1e6, 1),
        }
    return {"shop_months": 60, **out}


def bench_quality(retailers: int, years: int, seed: int) -> dict:
    """Planted archetypes -> features -> the project's model fit (RobustScaler, autoencoder, HDBSCAN)."""
    from sklearn.linear_model import LinearRegression

    from shared.data.generator import generate_frames
    from shared.model.fit import fit_bundle

    data = generate_frames(retailers=retailers, years=years, seed=seed)
    truth = data.truth.set_index("shop_id")["archetype"]
    monthly_volume = data.sales.groupby(["shop_id", "year", "month"])["sales_qty"].sum().groupby("shop_id").mean()
    out: dict = {"retailers": retailers, "years": years, "seed": seed}
    for name in FEATURE_SETS:
        feats = build_features(data.sales, name, EligibilityRule())
        X = feats.loc[feats["eligible"], list(FEATURE_SETS[name].columns)]
        bundle, metrics = fit_bundle(X, name, truth=truth)
        latent, labels = bundle.embed(X), truth.loc[X.index].to_numpy()
        log_size = np.log(monthly_volume.loc[X.index].to_numpy())
        r2 = {
            a: LinearRegression()
            .fit(latent[labels == a], log_size[labels == a])
            .score(latent[labels == a], log_size[labels == a])
            for a in np.unique(labels)
        }
        out[name] = {
            "eligible": len(X),
            "latent": {k: metrics["latent"].get(k) for k in ("clusters", "noise_ratio", "ari")},
            "raw": {k: metrics["raw"].get(k) for k in ("clusters", "noise_ratio", "ari")},
            "size_r2_in_latent_max": round(max(r2.values()), 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="best of N timings")
    parser.add_argument("--string-ids", action="store_true", help="string shop/product ids, as read from a CSV")
    parser.add_argument("--one", action="store_true", help="time compute_one instead of the batch")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--quality", action="store_true", help="downstream quality on planted archetypes")
    parser.add_argument("--retailers", type=int, default=4000)
    parser.add_argument("--years", type=int, default=5)
    args = parser.parse_args()
    if args.quality:
        result = bench_quality(args.retailers, args.years, args.seed)
    elif args.one:
        result = bench_one(args.calls)
    else:
        result = bench_batch(args.rows, args.seed, args.repeat, args.string_ids)
    print(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
