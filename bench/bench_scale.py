"""One machine at 1M retailers x 5 years (issue 13): wall time and peak memory per process of each batch stage.

Every stage runs as a child process while a sampler records the peak RSS of each process of its tree (every
0.25 s; ``ru_maxrss`` of the children is reported too), with the CPU seconds of the tree (user + system) and the
1-minute load average (the machine is shared: compare CPU with wall).

    .venv/bin/stableseg generate --retailers 1000000 --years 5 --seed 42 --out DATA
    .venv/bin/python bench/bench_scale.py pipeline --input DATA/sales.csv --artifacts ART   # bars <= 12 min, 8 GB
    .venv/bin/python bench/bench_scale.py trainer --features ART/features.csv --out TRAIN  # snapshot -> published
                                                                                           # bar <= 12 min
    .venv/bin/python bench/bench_scale.py relabel --features ART/features.csv --bundle TRAIN/bundle
                                                                                           # bars <= 3 min, 4 GB
    .venv/bin/python bench/bench_scale.py agreement --input DATA200K/sales.csv  # sample-fit vs full-fit HDBSCAN
                                                                                # labels, bar ARI >= 0.95

``trainer`` runs the trainer's own steps: snapshot of the eligible features, the fit in the trainer's worker
process (``FitExecutor``), artifact upload and the registry's candidate + publish (SQLite). ``relabel`` runs the
assigner's: a first relabel, a relabel by the same model matched to it, the Redis generation (embedded Redis)
and the SQL history. ``agreement`` fits the model once with every row clustered, then the latent HDBSCAN again on
the ``cluster_fit_max_rows`` sample with the rest predicted (twice: the labels must be identical).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import typer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
app = typer.Typer(help=__doc__, no_args_is_help=True)
GB = 1024**3


class PeakRss:
    """Samples the RSS of a process and its descendants: the peak per process and of their sum."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.root, self.every = pid, every
        self.peaks: dict[int, tuple[int, str]] = {}
        self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.root)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        total = 0
        for proc in procs:
            try:
                rss = proc.memory_info().rss
                name = self.peaks.get(proc.pid, (0, ""))[1] or " ".join(proc.cmdline()[:4])[:90]
            except psutil.Error:
                continue
            total += rss
            if rss > self.peaks.get(proc.pid, (0, ""))[0]:
                self.peaks[proc.pid] = (rss, name)
        self.total = max(self.total, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> dict[str, Any]:
        top = sorted(self.peaks.items(), key=lambda kv: -kv[1][0])[:5]
        return {"peak_rss_gb_sum": round(self.total / GB, 2),
                "peak_rss_gb_by_process": [{"pid": pid, "gb": round(rss / GB, 2), "cmd": name}
                                           for pid, (rss, name) in top]}


def measured(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` to the end; its wall seconds, exit code, stdout, peak RSS per process, load averages."""
    load_before = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env={**os.environ, **(env or {})}, text=True)
    with PeakRss(proc.pid) as peaks:
        out, _ = proc.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"command": " ".join(cmd), "exit": proc.returncode, "wall_seconds": round(wall, 1),
            "cpu_seconds_children": round(cpu, 1),
            "ru_maxrss_children_gb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2, 2),
            **peaks.report(), "load_1m_before": round(load_before[0], 2),
            "load_1m_after": round(os.getloadavg()[0], 2), "uptime": _uptime(), "stdout": out}


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _print(result: dict[str, Any], bars: dict[str, float]) -> None:
    stdout = result.pop("stdout", "")
    try:
        output = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else None
    except json.JSONDecodeError:
        output = stdout[-2000:]
    if isinstance(output, dict):  # the pipeline's summary: the figures, not every candidate
        output = {k: v for k, v in output.items() if k not in ("candidates", "trust", "profile")}
    result["stage_output"] = output
    result["bars"] = bars
    print(json.dumps(result, indent=2, default=str))


@app.command()
def pipeline(input: Path = typer.Option(...), artifacts: Path = typer.Option(...)) -> None:
    """``stableseg pipeline run --json`` on ``input``: wall time and peak RSS (bars <= 12 min and <= 8 GB)."""
    cmd = [str(Path(PYTHON).parent / "stableseg"), "pipeline", "run", "--input", str(input),
           "--artifacts", str(artifacts), "--json"]
    result = measured(cmd)
    _print(result, {"wall_seconds_max": 720, "peak_rss_gb_max": 8})


@app.command()
def trainer(features: Path = typer.Option(...), out: Path = typer.Option(...)) -> None:
    """The trainer's snapshot -> published on the eligible rows of a features.csv (bar <= 12 min)."""
    result = measured([PYTHON, __file__, "trainer-child", "--features", str(features), "--out", str(out)])
    _print(result, {"snapshot_to_published_seconds_max": 720})


@app.command()
def relabel(features: Path = typer.Option(...), bundle: Path = typer.Option(...)) -> None:
    """The assigner's relabel of every eligible retailer of a features.csv (bars <= 3 min and <= 4 GB)."""
    result = measured([PYTHON, __file__, "relabel-child", "--features", str(features), "--bundle", str(bundle)])
    _print(result, {"relabel_seconds_max": 180, "assigner_peak_rss_gb_max": 4})


@app.command()
def agreement(input: Path = typer.Option(...), truth: Path | None = typer.Option(None)) -> None:
    """Sample-fit vs full-fit latent HDBSCAN labels on one autoencoder (bar ARI >= 0.95)."""
    cmd = [PYTHON, __file__, "agreement-child", "--input", str(input)] + (["--truth", str(truth)] if truth else [])
    result = measured(cmd)
    _print(result, {"ari_sample_vs_full_min": 0.95})


def _eligible(features_csv: Path) -> Any:
    import pandas as pd

    frame = pd.read_csv(features_csv, dtype={"shop_id": str, "as_of": str}, index_col="shop_id")
    return frame[frame["eligible"]].drop(columns=["eligible"])


@app.command("trainer-child", hidden=True)
def trainer_child(features: Path = typer.Option(...), out: Path = typer.Option(...)) -> None:
    import asyncio

    from services.trainer.executor import FitExecutor
    from services.trainer.publication import store_artifact
    from services.trainer.snapshot import prepare_snapshot
    from shared.config import get_settings
    from shared.model.params import ModelParams
    from shared.storage import ArtifactStore, Registry, upgrade_database

    settings = get_settings()
    feature_set = settings.feature_set
    eligible = _eligible(features)
    params = ModelParams.from_settings(settings)
    out.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{out / 'registry.db'}"
    upgrade_database(url)

    async def run() -> dict[str, Any]:
        seconds: dict[str, float] = {}
        executor = FitExecutor("console", "WARNING")
        t0 = time.perf_counter()
        await executor.start()
        seconds["worker_start"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        snapshot = prepare_snapshot(eligible, feature_set)
        seconds["snapshot"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        meta = {"data_as_of": snapshot.data_as_of, "training_rows": snapshot.rows}
        result = await executor.fit(snapshot.features, feature_set, params, str(out / "bundle"), meta)
        seconds["fit_and_save_in_worker"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        uri = store_artifact(ArtifactStore(str(out / "artifacts")), result["directory"], feature_set,
                             result["sha256"])
        registry = Registry(url)
        number = registry.versions.register_candidate(feature_set=feature_set, params={}, metrics={},
                                                      training_rows=snapshot.rows, data_as_of=snapshot.data_as_of,
                                                      seed=params.seed, artifact_uri=uri, sha256=result["sha256"])
        registry.versions.mark_published(number)
        registry.close()
        seconds["publish"] = time.perf_counter() - t1
        seconds["snapshot_to_published"] = time.perf_counter() - t0
        await executor.stop()
        return {"seconds": {k: round(v, 1) for k, v in seconds.items()}, "fit_seconds": result["metrics"]["seconds"],
                "rows": snapshot.rows, "latent_fit_rows": result["metrics"].get("latent_fit_rows"),
                "served": {k: result["metrics"]["served"].get(k) for k in ("space", "clusters", "noise_ratio")}}

    print(json.dumps(asyncio.run(run()), default=float))


@app.command("relabel-child", hidden=True)
def relabel_child(features: Path = typer.Option(...), bundle: Path = typer.Option(...)) -> None:
    from embedded_stores import embedded_stores, persist_relabel, publish_version

    from services.assigner.book import Book
    from services.assigner.relabel import relabel as relabel_all
    from services.assigner.store import AssignmentStore
    from shared.model.bundle import ModelBundle
    from shared.storage import Registry

    eligible = _eligible(features).drop(columns=["as_of"])
    model = ModelBundle.load(bundle)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    first = relabel_all(Book(), eligible, model, 1)
    seconds["relabel_first"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    second = relabel_all(first.book(), eligible, model, 2)
    seconds["relabel_matched"] = time.perf_counter() - t1
    with embedded_stores() as stores:
        registry = Registry(stores.database_url)
        store = AssignmentStore(stores.redis.url)
        publish_version(registry, model.feature_set, 1, len(eligible), "bench")
        persisted = persist_relabel(store, registry, first)
        seconds["persist_redis_and_sql"] = persisted["total"]
        seconds["persist_stage"], seconds["persist_sql"] = persisted["stage"], persisted["sql"]
        store.close()
        registry.close()
    seconds["relabel_total"] = seconds["relabel_first"] + seconds["persist_redis_and_sql"]
    print(json.dumps({"rows": len(eligible), "seconds": {k: round(v, 1) for k, v in seconds.items()},
                      "counts_first": first.counts, "counts_matched": second.counts}, default=str))


@app.command("agreement-child", hidden=True)
def agreement_child(input: Path = typer.Option(...), truth: Path | None = typer.Option(None)) -> None:
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    from shared.config import get_settings
    from shared.features import EligibilityRule
    from shared.model.fit import canonical_order, fit_bundle, fit_density, raw_baseline_rows
    from shared.model.params import ModelParams
    from shared.model.schedule import Density
    from shared.pipeline import _read_features, read_truth

    settings = get_settings()
    features, _ = _read_features(input, settings.feature_set, EligibilityRule.from_settings(settings))
    eligible = canonical_order(features.loc[features["eligible"]].drop(columns=["eligible", "as_of"]))
    params = ModelParams.from_settings(settings)
    bound = params.cluster_fit_max_rows
    t0 = time.perf_counter()
    everything = params.model_copy(update={"cluster_fit_max_rows": None})
    bundle, metrics = fit_bundle(eligible, settings.feature_set, everything)
    fit_seconds = time.perf_counter() - t0
    full = bundle.latent_clusterer
    latent = bundle.embed(eligible)
    density = Density(min_cluster_size=full.min_cluster_size, min_samples=full.min_samples)
    sample = raw_baseline_rows(len(eligible), bound)
    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        runs.append((fit_density(latent, density, params, sample), time.perf_counter() - t0))
    t0 = time.perf_counter()
    refit = fit_density(latent, density, params)
    full_seconds = time.perf_counter() - t0
    labels = runs[0][0].labels_
    report: dict[str, Any] = {
        "eligible": len(eligible), "cluster_fit_max_rows": bound, "sample_rows": len(sample),
        "density_full": density.as_dict(), "served_space": metrics["served"]["space"],
        "density_sample": {"min_cluster_size": runs[0][0].min_cluster_size, "min_samples": runs[0][0].min_samples},
        "ari_sample_vs_full": round(float(adjusted_rand_score(full.labels_, labels)), 4),
        "ari_on_sample_rows": round(float(adjusted_rand_score(full.labels_[sample], labels[sample])), 4),
        "deterministic": bool(np.array_equal(labels, runs[1][0].labels_)),
        "full_refit_identical": bool(np.array_equal(full.labels_, refit.labels_)),
        "clusters": {"full": full.n_clusters_, "sample": runs[0][0].n_clusters_},
        "noise_ratio": {"full": round(float((full.labels_ < 0).mean()), 4),
                        "sample": round(float((labels < 0).mean()), 4)},
        "seconds": {"fit_bundle_full": round(fit_seconds, 1), "latent_hdbscan_full": round(full_seconds, 1),
                    "latent_hdbscan_sample_and_predict": round(runs[0][1], 1)},
    }
    if truth is not None:
        archetype = read_truth(truth).reindex(eligible.index).fillna("unknown").to_numpy()
        report["ari_vs_truth"] = {"full": round(float(adjusted_rand_score(archetype, full.labels_)), 4),
                                  "sample": round(float(adjusted_rand_score(archetype, labels)), 4)}
    print(json.dumps(report))


if __name__ == "__main__":
    app()
