"""A full training on 60,000 retailers as the trainer runs it: generator data -> build_features -> snapshot ->
fit_bundle + bundle save in the trainer's worker process (target: the training under 90 s on this machine).

Run: ``.venv/bin/python bench/bench_train.py [--retailers 60000] [--years 3] [--seed 7] [--epochs 30]
[--no-raw-baseline]`` (the last only to see what the raw-feature HDBSCAN baseline costs).
Prints wall seconds by stage, the training total (snapshot -> saved bundle, the worker already warm: the
service warms it at start), the worker's TensorFlow start-up separately, user/system CPU seconds of this process
and of the worker (the machine may be shared: compare CPU with wall), and the clusterings' figures. ``--json``
prints the same as one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import tempfile
import time
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from services.trainer.executor import FitExecutor
from services.trainer.snapshot import prepare_snapshot
from shared.data.generator import generate_frames
from shared.features import DEFAULT_FEATURE_SET, build_features
from shared.model.params import ModelParams

console = Console(stderr=True)
TARGET_SECONDS = 90.0


def _cpu(who: int) -> tuple[float, float]:
    usage = resource.getrusage(who)
    return usage.ru_utime, usage.ru_stime


async def _train(features: Any, params: ModelParams, feature_set: str, seconds: dict[str, float]) -> dict[str, Any]:
    executor = FitExecutor("console", "WARNING")
    t0 = time.perf_counter()
    await executor.start()
    seconds["worker_start (TensorFlow import, once per service)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    snapshot = prepare_snapshot(features.loc[features["eligible"]].drop(columns=["eligible"]), feature_set)
    seconds["snapshot"] = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        t0 = time.perf_counter()
        meta = {"data_as_of": snapshot.data_as_of, "training_rows": snapshot.rows}
        result = await executor.fit(snapshot.features, feature_set, params, f"{tmp}/bundle", meta)
        seconds["fit_in_worker"] = time.perf_counter() - t0
    await executor.stop()  # the worker exits: its CPU time shows up in RUSAGE_CHILDREN
    return result


def main(
    retailers: int = 60_000, years: int = 3, seed: int = 7, epochs: int = 30, min_cluster_size: int = 50,
    feature_set: str = DEFAULT_FEATURE_SET, as_json: bool = typer.Option(False, "--json"),
    raw_baseline: bool = typer.Option(True, help="also cluster the scaled raw features (the trainer always does)"),
) -> None:
    """Time every stage of one training."""
    load = os.getloadavg()[0]
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    data = generate_frames(retailers, years, seed)
    seconds["generate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    features = build_features(data.sales, feature_set)
    seconds["build_features"] = time.perf_counter() - t0
    params = ModelParams(epochs=epochs, min_cluster_size=min_cluster_size, seed=seed, raw_baseline=raw_baseline)
    result = asyncio.run(_train(features, params, feature_set, seconds))
    metrics = result["metrics"]
    fit = metrics["seconds"]
    training = seconds["snapshot"] + seconds["fit_in_worker"]
    parent_cpu, worker_cpu = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    report = {
        "retailers": retailers, "sales_rows": len(data.sales), "eligible": int(features["eligible"].sum()),
        "features": len(features.columns) - 2, "load_average_1m_at_start": round(load, 2),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "fit_seconds": fit, "training_seconds": round(training, 2), "target_seconds": TARGET_SECONDS,
        "cpu_seconds": {"bench_user": round(parent_cpu[0], 1), "bench_system": round(parent_cpu[1], 1),
                        "worker_user": round(worker_cpu[0], 1), "worker_system": round(worker_cpu[1], 1)},
        "latent": {k: metrics["latent"][k] for k in ("clusters", "noise_ratio", "largest_share")},
        "raw": metrics["raw"] and {k: metrics["raw"][k] for k in ("clusters", "noise_ratio", "largest_share")},
        "epochs_run": metrics["autoencoder"]["epochs_run"],
    }
    if as_json:
        print(json.dumps(report))
        return
    table = Table("stage", "seconds", title=f"training on {report['eligible']:,} eligible of {retailers:,} retailers")
    for stage, value in seconds.items():
        table.add_row(stage, f"{value:.2f}")
    for stage in ("scaling", "autoencoder", "latent_clustering", "raw_clustering", "metrics", "save"):
        table.add_row(f"  fit: {stage}", f"{fit.get(stage, 0.0):.2f}")
    verdict = "[green]under" if training < TARGET_SECONDS else "[red]OVER"
    table.add_row("[bold]training (snapshot -> saved bundle)", f"[bold]{training:.2f}  {verdict} {TARGET_SECONDS:g} s")
    console.print(table)
    console.print(f"CPU seconds: {report['cpu_seconds']} (1-min load average at start {load:.1f})")
    console.print(f"latent: {report['latent']}  raw: {report['raw']}  epochs run: {report['epochs_run']}")


if __name__ == "__main__":
    typer.run(main)
