"""One training, start to finish: snapshot -> fit (worker process) -> quality gates -> durable publication -> event.

``Hooks`` lets tests (and chaos drills) inject a failure at a named step: ``"snapshot"``, ``"fitted"``,
``"stored"`` (artifact committed, no registry row yet) and ``"registered"`` (candidate row, not yet published).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.trainer.executor import FitExecutor
from services.trainer.publication import recover, register_published, register_rejected, store_artifact
from services.trainer.snapshot import SettleCheck, Snapshot, SnapshotSource, take_snapshot, wait_settled
from shared.logging import get_logger
from shared.model.gates import Gates
from shared.model.params import ModelParams
from shared.model.refusal import InsufficientDataError
from shared.storage import ArtifactStore, ModelVersionInfo, Registry

log = get_logger("stableseg.trainer.training")
Hook = Callable[[str], None]
Announce = Callable[[ModelVersionInfo], Awaitable[None]]


@dataclass
class Outcome:
    """What a training ended with: ``published`` / ``rejected`` (with ``version``) or ``failed`` (``reason``).

    ``seconds``: wall time by stage (snapshot, fit, upload, announce, total); ``metrics["seconds"]`` has the
    fit's own breakdown (scaling, autoencoder, latent_clustering, raw_clustering, metrics, save)."""

    status: str
    version: int | None = None
    reason: str | None = None
    rows: int | None = None
    data_as_of: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainingContext:
    """Everything a training needs; built once by the service."""

    feature_set: str
    params: ModelParams
    gates: Gates
    registry: Registry
    store: ArtifactStore
    source: SnapshotSource
    executor: FitExecutor
    announce: Announce
    hook: Hook | None = None
    settle: SettleCheck | None = None  # None: snapshot at once (tests with an in-memory source)
    settle_deadline_seconds: float = 120.0


@contextmanager
def _timing(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Record how long the block took under ``stage`` (only when it succeeds)."""
    t0 = time.perf_counter()
    yield
    seconds[stage] = round(time.perf_counter() - t0, 3)


async def _snapshot(ctx: TrainingContext, tags: dict[str, Any], seconds: dict[str, float]
                    ) -> tuple[Snapshot, dict[str, Any]]:
    """Wait for a settled store (or say why the wait ended), then snapshot it; the tags gain what happened."""
    if ctx.settle is not None:
        with _timing(seconds, "settle"):
            settled = await wait_settled(ctx.settle, ctx.settle_deadline_seconds)
        tags = {**tags, "store_settled": settled["settled"]}
        if not settled["settled"]:
            log.warning("training.unsettled_store", waited_seconds=settled["waited_seconds"], reason=settled["reason"])
    with _timing(seconds, "snapshot"):
        snapshot = await asyncio.to_thread(take_snapshot, ctx.source, ctx.feature_set)
    log.info("training.snapshot", feature_set=ctx.feature_set, rows=snapshot.rows, data_as_of=snapshot.data_as_of,
             seconds=seconds["snapshot"])
    return snapshot, {**tags, "snapshot": snapshot.source}


async def _fit(ctx: TrainingContext, snapshot: Snapshot, staging: Path, seconds: dict[str, float]) -> dict[str, Any]:
    """The executor's fit result; data that cannot support segments gives a ``refused`` result that says why."""
    meta = {"data_as_of": snapshot.data_as_of, "training_rows": snapshot.rows}
    with _timing(seconds, "fit"):
        try:
            return await ctx.executor.fit(snapshot.features, ctx.feature_set, ctx.params, str(staging / "bundle"),
                                          meta)
        except InsufficientDataError as exc:
            return {"metrics": {"n": snapshot.rows, "refusal": {"cause": exc.cause, "remedy": exc.remedy}},
                    "sha256": None, "refused": f"cannot segment: {exc}"}


async def train(ctx: TrainingContext, tags: dict[str, Any]) -> Outcome:
    """Run one training (the caller holds the training lock). Exceptions propagate after clean-up."""
    hook = ctx.hook or (lambda step: None)
    started, seconds = time.perf_counter(), {}
    await asyncio.to_thread(recover, ctx.registry, ctx.store)
    snapshot, tags = await _snapshot(ctx, tags, seconds)
    hook("snapshot")
    staging = Path(tempfile.mkdtemp(prefix="stableseg-train-"))
    try:
        result = await _fit(ctx, snapshot, staging, seconds)
        metrics, sha256 = result["metrics"], result["sha256"]
        hook("fitted")
        reason = result.get("refused") or ctx.gates.verdict(metrics["served"])
        if reason is not None:
            metrics["training_seconds"] = dict(seconds)
            info = await asyncio.to_thread(
                register_rejected, ctx.registry, snapshot, ctx.params, metrics, tags, reason
            )
            log.warning("training.rejected", version=info.version, reason=reason)
            return _outcome("rejected", info, snapshot.rows, metrics, seconds, started, reason)

        with _timing(seconds, "upload"):
            uri = await asyncio.to_thread(store_artifact, ctx.store, result["directory"], ctx.feature_set, sha256)
        try:
            hook("stored")
            metrics["training_seconds"] = dict(seconds)
            info = await asyncio.to_thread(
                register_published, ctx.registry, snapshot, ctx.params, metrics, tags, uri, sha256,
                lambda version: hook("registered"),
            )
        except BaseException:
            await asyncio.to_thread(recover, ctx.registry, ctx.store)  # best effort; the next start retries it
            raise
        with _timing(seconds, "announce"):
            await ctx.announce(info)
        log.info("training.published", version=info.version, artifact_uri=uri, sha256=sha256)
        return _outcome("published", info, snapshot.rows, metrics, seconds, started)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _outcome(
    status: str, info: ModelVersionInfo, rows: int, metrics: dict[str, Any], seconds: dict[str, float],
    started: float, reason: str | None = None,
) -> Outcome:
    seconds = {**seconds}
    seconds["total"] = round(time.perf_counter() - started, 3)
    return Outcome(status, info.version, reason, rows, info.data_as_of, metrics, seconds)
