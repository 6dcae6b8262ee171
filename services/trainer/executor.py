"""Runs fits off the event loop, in a worker process, so /healthz and Kafka heartbeats stay responsive.

One long-lived worker (``spawn``ed, TensorFlow imported once at start) serves every training; HDBSCAN holds the
GIL for long stretches, which is why a thread is not enough. If the worker dies (OOM kill, crash) the training
fails with :class:`WorkerCrashed` and the next fit starts a fresh worker. ``stop`` kills a fit in progress.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from typing import Any

import pandas as pd

from services.trainer import job
from shared.logging import get_logger
from shared.model.params import ModelParams

log = get_logger("stableseg.trainer.executor")


class WorkerCrashed(RuntimeError):
    """The training worker process died before returning a result."""


class FitExecutor:
    """``await fit(...)`` in a single reusable worker process; ``start()`` warms it, ``stop()`` ends it."""

    def __init__(self, log_format: str = "json", log_level: str = "INFO", warm: bool = True) -> None:
        self.log_format = log_format
        self.log_level = log_level
        self.warm = warm
        self._pool: ProcessPoolExecutor | None = None

    def _ensure(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=job.init_worker,
                initargs=(self.log_format, self.log_level, self.warm),
            )
        return self._pool

    async def start(self) -> int:
        """Start (and warm) the worker; returns its pid."""
        return await self._call(job.worker_pid)

    async def pid(self) -> int:
        """Process id of the worker (started if needed)."""
        return await self._call(job.worker_pid)

    async def fit(
        self, features: pd.DataFrame, feature_set: str, params: ModelParams, out_dir: str, meta: dict[str, Any]
    ) -> dict[str, Any]:
        """:func:`services.trainer.job.fit_to_directory` in the worker."""
        return await self._call(job.fit_to_directory, features, feature_set, params, out_dir, meta)

    async def _call(self, fn: Any, *args: Any) -> Any:
        pool = self._ensure()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except BrokenProcessPool as exc:
            self._discard()
            raise WorkerCrashed("the training worker process died (killed or crashed) before finishing") from exc

    def _discard(self, wait: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    def kill(self) -> None:
        """SIGKILL the worker (a fit in progress is abandoned; the next call starts a new worker)."""
        pool = self._pool
        for process in list(getattr(pool, "_processes", {}).values()) if pool else []:
            with suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        self._discard(wait=True)  # returns at once: the worker is dead; releases the pool's resources

    async def stop(self) -> None:
        """End the worker, killing a fit in progress."""
        self.kill()
        log.info("trainer.worker_stopped")
