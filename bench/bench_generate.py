"""Generator and CSV reader benchmarks (run on demand, not part of the test suite).

    .venv/bin/python bench/bench_generate.py                 # 60,000 retailers x 5 years, twice: seconds, rows/s,
                                                             # sha256 identity; then the reader's rows/s on the file
    .venv/bin/python bench/bench_generate.py --separability  # 20,000 x 5 years through behaviour-v2 and seed-v1
                                                             # (autoencoder + HDBSCAN): ARI and noise vs truth

Targets: generation under 60 s with byte-identical output for a seed; reader >= 50,000 rows/s; behaviour-v2
ARI >= 0.85 with <= 15% noise, the seed's features far lower (~0.45).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.data import generate, generate_frames, iter_sales_batches  # noqa: E402

GENERATE_TARGET_S = 60.0
READ_TARGET_ROWS_S = 50_000


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def bench_generate(retailers: int, years: int, seed: int, runs: int, read: bool) -> bool:
    """Generate ``runs`` times into fresh folders; True when every run is byte-identical and under target."""
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        hashes = set()
        for run in range(runs):
            summary = generate(retailers, years, seed, Path(tmp) / f"run{run}")
            sha = (_sha256(summary.sales_path), _sha256(summary.truth_path))
            hashes.add(sha)
            size_mb = summary.sales_path.stat().st_size / 1e6
            fast = summary.seconds < GENERATE_TARGET_S
            ok &= fast
            print(f"generate run {run + 1}: {retailers:,} retailers x {years} years -> {summary.rows:,} rows "
                  f"({size_mb:,.0f} MB) in {summary.seconds:.1f} s = {summary.rows / summary.seconds:,.0f} rows/s "
                  f"[{'ok' if fast else 'SLOW'}: target < {GENERATE_TARGET_S:.0f} s] sales sha256 {sha[0][:16]}")
        identical = len(hashes) == 1
        ok &= identical
        print(f"byte-identical across {runs} runs: {identical}")
        if read:
            began, rows, rejected = time.perf_counter(), 0, 0
            for batch in iter_sales_batches(summary.sales_path):
                rows += len(batch.rows)
                rejected += len(batch.rejected)
            seconds = time.perf_counter() - began
            fast = rows / seconds >= READ_TARGET_ROWS_S and rejected == 0
            ok &= fast
            print(f"read (collecting mode): {rows:,} rows, {rejected} rejected in {seconds:.1f} s = "
                  f"{rows / seconds:,.0f} rows/s [{'ok' if fast else 'SLOW'}: target >= {READ_TARGET_ROWS_S:,}]")
    return ok


def bench_separability(retailers: int, years: int, seed: int) -> None:
    """Planted archetypes recovered by each feature set through the project's model (autoencoder + HDBSCAN)."""
    from shared.features import build_features
    from shared.model.fit import fit_bundle

    data = generate_frames(retailers, years, seed)
    truth = data.truth.set_index("shop_id")["archetype"]
    for feature_set in ("behaviour-v2", "seed-v1"):
        features = build_features(data.sales, feature_set)
        eligible = features[features["eligible"]].drop(columns=["eligible", "as_of"])
        _, metrics = fit_bundle(eligible, feature_set, truth=truth)
        summary = {space: {k: metrics[space][k] for k in ("clusters", "noise_ratio", "largest_share", "ari")}
                   for space in ("latent", "raw")}
        print(json.dumps({"feature_set": feature_set, "shops": len(features), "eligible": len(eligible),
                          **summary}, default=lambda v: round(float(v), 4)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retailers", type=int, default=None, help="default 60,000 (20,000 with --separability)")
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--no-read", action="store_true", help="skip the reader benchmark")
    parser.add_argument("--separability", action="store_true")
    args = parser.parse_args()
    if args.separability:
        bench_separability(args.retailers or 20_000, args.years, args.seed)
        return
    if not bench_generate(args.retailers or 60_000, args.years, args.seed, args.runs, not args.no_read):
        sys.exit(1)


if __name__ == "__main__":
    main()
