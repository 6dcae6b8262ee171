"""The compute half of a training, run in a worker process: fit the core model and write the bundle directory.

Only pure computation happens here (``fit_bundle`` then ``ModelBundle.save``); everything durable (artifact
upload, registry rows, events) stays in the service, so a worker that dies leaves nothing behind but a
temporary directory. The manifest carries no wall-clock time: the same snapshot and seed give byte-identical
files and therefore the same manifest SHA-256.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from shared.artifacts import manifest_sha256
from shared.logging import configure_logging, get_logger
from shared.model.params import ModelParams

log = get_logger("stableseg.trainer.job")
_PROGRESS_EVERY_SECONDS = 2.0


def _exit_with_parent(parent: int) -> None:
    """Leave no orphan fitting for nobody: exit as soon as the service process that started us is gone."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def init_worker(log_format: str, log_level: str, warm: bool = True) -> None:
    """Worker-process initialiser: the service's logging, a parent watchdog, and TensorFlow imported up front
    (slow, done once per worker)."""
    configure_logging(log_format, log_level)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="parent-watchdog", daemon=True).start()
    if warm:
        started = time.perf_counter()
        from shared.model.autoencoder import _keras

        _keras()
        log.info("trainer.worker_ready", pid=os.getpid(), seconds=round(time.perf_counter() - started, 2))


def worker_pid() -> int:
    """The worker's process id (tests and operators use it to find the process doing the fit)."""
    return os.getpid()


class _ProgressLog:
    """``fit_bundle``'s progress callback as structured logs: every stage change, else at most every 2 s."""

    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context
        self.stage: str | None = None
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self.stage or done == total or now - self.last >= _PROGRESS_EVERY_SECONDS:
            self.stage, self.last = stage, now
            log.info("training.progress", stage=stage, done=done, total=total, **self.context)


def fit_to_directory(
    features: pd.DataFrame, feature_set: str, params: ModelParams, out_dir: str, meta: dict[str, Any]
) -> dict[str, Any]:
    """Fit on ``features`` and save the bundle into ``out_dir`` (empty or missing).

    Returns ``{"metrics": ..., "sha256": manifest checksum, "directory": out_dir}``; ``metrics`` includes the
    fit's stage timings plus ``seconds.save``. ``meta`` (JSON) goes into the manifest.
    """
    from shared.model.fit import fit_bundle

    bundle, metrics = fit_bundle(features, feature_set, params, progress=_ProgressLog({"feature_set": feature_set}))
    started = time.perf_counter()
    deterministic = {key: metrics[key] for key in ("n", "latent", "raw", "served", "selection", "trust")}
    bundle.save(Path(out_dir), created=None, meta={**meta, "metrics": deterministic})
    metrics["seconds"]["save"] = round(time.perf_counter() - started, 3)
    return {"metrics": metrics, "sha256": manifest_sha256(out_dir), "directory": str(out_dir)}
