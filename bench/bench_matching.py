"""Speed of segment identity: match 60,000 retailers x ~10 clusters to the previous segments, then assign.

Run: ``.venv/bin/python bench/bench_matching.py [--retailers 60000] [--clusters 10] [--repeats 7]``.
Prints the median wall time of ``match_clusters`` and ``assign_segments`` (target: match far under 1 s).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd
import typer

from shared.segments import SegmentIdState, assign_segments, match_clusters


def main(retailers: int = 60_000, clusters: int = 10, repeats: int = 7, move: float = 0.05, noise: float = 0.15,
         seed: int = 0) -> None:
    """Median timings over ``repeats`` runs on a retrain where ``move`` of retailers change cluster."""
    rng = np.random.default_rng(seed)
    shops = pd.Index([f"shop-{i:06d}" for i in range(retailers)])
    base = rng.integers(0, clusters, retailers)
    first_labels = pd.Series(np.where(rng.random(retailers) < noise, -1, base), index=shops)
    first = match_clusters(None, first_labels, SegmentIdState())
    previous = assign_segments(None, first_labels, pd.Series(rng.random(retailers), index=shops), first)
    prev_segments = previous.set_index("shop_id")["segment"]
    moved = np.where(rng.random(retailers) < move, rng.integers(0, clusters, retailers), base)
    permutation = rng.permutation(clusters) + 100  # the new model numbers its clusters differently
    labels = pd.Series(np.where(rng.random(retailers) < noise, -1, permutation[moved]), index=shops)
    strengths = pd.Series(rng.random(retailers), index=shops)

    match_times, assign_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = match_clusters(prev_segments, labels, first.state)
        match_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        out = assign_segments(previous, labels, strengths, result)
        assign_times.append(time.perf_counter() - start)
    print(f"retailers={retailers} clusters={clusters} continued={len(result.continued)} "
          f"changed={int(out['changed'].sum())} held={int(out['held'].sum())}")
    for name, times in (("match_clusters ", match_times), ("assign_segments", assign_times)):
        print(f"{name} median {statistics.median(times) * 1000:8.1f} ms  (min {min(times) * 1000:.1f} ms)")


if __name__ == "__main__":
    typer.run(main)
