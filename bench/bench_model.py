"""Model benchmarks (run on demand, not part of the test suite).

    .venv/bin/python bench/bench_model.py --predict            # HDBSCAN fit + approximate_predict, 60k x 5 latent
    .venv/bin/python bench/bench_model.py --fit --rows 60000   # fit_bundle end to end (29 features, seed params)
    .venv/bin/python bench/bench_model.py --determinism        # two processes, same data: same manifest sha256?

Target: one retailer assigned online (``bundle.assign`` of one row: scale + numpy encoder +
``approximate_predict``) in < 20 ms with a clusterer fitted on 60k retailers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.clustering import DensityClusterer  # noqa: E402


def latent_like(rows: int, dim: int, seed: int) -> np.ndarray:
    """Six unequal, overlapping Gaussian groups plus 10% uniform background (like an embedding)."""
    rng = np.random.default_rng(seed)
    weights = np.array([0.4, 0.2, 0.12, 0.1, 0.05, 0.03])
    centres = rng.normal(scale=3.0, size=(len(weights), dim))
    groups = rng.choice(len(weights), size=rows, p=weights / weights.sum())
    points = centres[groups] + rng.normal(scale=0.6, size=(rows, dim))
    background = rng.random(rows) < 0.1
    points[background] = rng.uniform(-8, 8, size=(int(background.sum()), dim))
    return points


def features_like(rows: int, n_features: int, seed: int) -> pd.DataFrame:
    """Heavy-tailed positive features indexed by shop_id, like seed-v1."""
    rng = np.random.default_rng(seed)
    size = rng.lognormal(mean=3.0, sigma=1.2, size=(rows, 1))
    shape = rng.dirichlet(np.ones(n_features), size=rows) * rng.choice([1.0, 3.0], size=(rows, 1))
    values = size * shape + rng.normal(scale=0.05, size=(rows, n_features))
    index = pd.Index([f"shop-{i:06d}" for i in range(rows)], name="shop_id")
    return pd.DataFrame(values, index=index, columns=[f"f{i:02d}" for i in range(n_features)])


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(samples_ms)
    return {"p50_ms": round(float(np.median(arr)), 3), "p99_ms": round(float(np.percentile(arr, 99)), 3)}


def bench_predict(rows: int, dim: int, min_cluster_size: int) -> dict:
    X = latent_like(rows, dim, seed=0)
    t0 = time.perf_counter()
    clusterer = DensityClusterer(min_cluster_size=min_cluster_size).fit(X)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    DensityClusterer(min_cluster_size=min_cluster_size, gen_min_span_tree=False).fit(X)
    fit_no_mst_s = time.perf_counter() - t0
    probe = latent_like(500, dim, seed=1)
    clusterer.predict(probe[:1])  # warm-up
    one = []
    for row in probe:
        t0 = time.perf_counter()
        clusterer.predict(row.reshape(1, -1))
        one.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    labels, _ = clusterer.predict(X)
    all_s = time.perf_counter() - t0
    return {
        "rows": rows, "dim": dim, "clusters": clusterer.n_clusters_,
        "fit_seconds": round(fit_s, 2), "fit_seconds_without_mst": round(fit_no_mst_s, 2),
        "predict_one": _percentiles(one), "predict_all_seconds": round(all_s, 2),
        "predict_all_agrees_with_fit": round(float((labels == clusterer.labels_).mean()), 4),
    }


def bench_fit(rows: int, n_features: int, epochs: int) -> dict:
    from shared.model import ModelParams, fit_bundle

    frame = features_like(rows, n_features, seed=0)
    bundle, metrics = fit_bundle(frame, "bench", ModelParams(epochs=epochs))
    one = []
    for i in range(300):
        row = frame.iloc[[i]]
        t0 = time.perf_counter()
        bundle.assign(row)
        one.append((time.perf_counter() - t0) * 1000)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        bundle.save(Path(tmp) / "m")
        save_s = time.perf_counter() - t0
        sizes = {p.name: p.stat().st_size for p in (Path(tmp) / "m").iterdir()}
    return {
        "rows": rows, "features": n_features, "seconds": metrics["seconds"],
        "latent": {k: metrics["latent"][k] for k in ("clusters", "noise_ratio", "largest_share")},
        "raw": {k: metrics["raw"][k] for k in ("clusters", "noise_ratio", "largest_share")},
        "assign_one_row": _percentiles(one), "save_seconds": round(save_s, 2), "file_bytes": sizes,
    }


_CHILD = """
import sys, tempfile; sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
from pathlib import Path
from bench_model import features_like
from shared.artifacts import manifest_sha256
from shared.model import ModelParams, fit_bundle
bundle, _ = fit_bundle(features_like({rows}, 29, seed=0), "bench", ModelParams(epochs=5))
d = Path(tempfile.mkdtemp()) / "m"; bundle.save(d, created="fixed"); print(manifest_sha256(d))
"""


def bench_determinism(rows: int) -> dict:
    code = _CHILD.format(root=str(ROOT), bench=str(ROOT / "bench"), rows=rows)
    shas = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[-1]
        for _ in range(2)
    ]
    return {"rows": rows, "manifest_sha256": shas, "identical": shas[0] == shas[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predict", action="store_true")
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--determinism", action="store_true")
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--dim", type=int, default=5)
    parser.add_argument("--features", type=int, default=29)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--min-cluster-size", type=int, default=50)
    args = parser.parse_args()
    results = {}
    if args.predict or not (args.fit or args.determinism):
        results["predict"] = bench_predict(args.rows, args.dim, args.min_cluster_size)
    if args.fit:
        results["fit"] = bench_fit(args.rows, args.features, args.epochs)
    if args.determinism:
        results["determinism"] = bench_determinism(min(args.rows, 3000))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
