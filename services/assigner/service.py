"""The assigner's event loop: relabel on ``models.published`` / promotion, assign online on ``features.updated``.

One asyncio lock serialises everything that changes assignments (a relabel, an online batch, a promotion); the
heavy work runs in worker threads so the API keeps answering. The relabel path (and its write-ahead recovery) is
:class:`~services.assigner.relabeller.Relabeller`; online: decide, publish, then write Redis and SQL. A batch
whose effects failed is re-fetched (``KafkaLink.rewind``) and offsets are committed only after success, so every
event is applied at least once and applying one twice changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from aiokafka.structs import ConsumerRecord
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from services.assigner.book import Serving
from services.assigner.link import KafkaLink
from services.assigner.loader import BundleLoader, ModelRefused
from services.assigner.metrics import AssignerMetrics
from services.assigner.online import OnlineAssigner
from services.assigner.pending import PendingRelabel
from services.assigner.publishing import change_records, publish
from services.assigner.relabeller import Relabeller
from services.assigner.store import AssignmentStore
from shared.bus import EventDecodeError, decode_event
from shared.bus.topics import FEATURES_UPDATED, MODELS_PUBLISHED
from shared.config import Settings
from shared.feature_store import FeatureStore
from shared.http import freeze_heap
from shared.logging import get_logger
from shared.model.bundle import ModelBundle
from shared.segments import MatchParams
from shared.storage import ArtifactStore, ModelVersionInfo, NotFoundError, Registry

log = get_logger("stableseg.assigner")


class AssignerService:
    """Owns the stores, the Kafka link and the serving model; ``await start()`` / ``await stop()``."""

    def __init__(self, settings: Settings, metrics: AssignerMetrics, link: KafkaLink | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.params = MatchParams.from_settings(settings)
        self.store = AssignmentStore(settings.redis_url, cluster=settings.redis_cluster)
        self.features = FeatureStore(settings.redis_url, cluster=settings.redis_cluster,
                                     groups=settings.feature_store_slot_groups)
        self.loader = BundleLoader(ArtifactStore(settings.effective_artifact_uri),
                                   settings.data_dir / "assigner-models")
        self.link = link or KafkaLink(settings)
        self.registry: Registry | None = None
        self.lock = asyncio.Lock()
        self.bundle: ModelBundle | None = None
        self.serving: Serving | None = None
        self.online: OnlineAssigner | None = None
        self.initialised = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.relabeller = Relabeller(self._registry, self.store, self.features, self.loader, self.link, metrics,
                                     self.params)

    # --- life cycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="assigner-loop")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.link.stop()
        for closing in (self.store.close, self.features.close):
            with contextlib.suppress(Exception):
                closing()
        if self.registry is not None:
            self.registry.close()

    async def _run(self) -> None:
        retrying = AsyncRetrying(retry=retry_if_exception_type(Exception), wait=wait_exponential(0.2, max=5),
                                 before_sleep=lambda s: log.warning("assigner.init_retry", attempt=s.attempt_number,
                                                                    error=repr(s.outcome.exception())))
        await self.link.start()
        async for attempt in retrying:
            with attempt:
                await self._init()
        self.initialised.set()
        log.info("assigner.heap_frozen", objects=freeze_heap())
        await self._consume()

    async def _init(self) -> None:
        if self.registry is None:
            self.registry = await asyncio.to_thread(Registry.open, self.settings.effective_database_url)
        async with self.lock:
            await self._resume_pending()
            if await asyncio.to_thread(self.store.gen) is None:
                from services.assigner.ledger import rebuild_from_sql

                await asyncio.to_thread(rebuild_from_sql, self.registry, self.store)
            await self._load_serving()
            await self._catch_up()

    async def _load_serving(self) -> None:
        record = await asyncio.to_thread(self.store.serving)
        if record is None:
            return
        info = await asyncio.to_thread(self._registry().versions.get, int(record["version"]))
        try:
            bundle = await asyncio.to_thread(self.loader.load, info)
        except ModelRefused as exc:  # the assignments still answer; online assignment waits for a good model
            log.error("assigner.serving_model_unloadable", version=info.version, error=str(exc))
            return
        self._serve(bundle, Serving.from_json(record))

    async def _catch_up(self) -> None:
        """Apply the registry's current version if it was published while we were away (and never applied)."""
        current = await asyncio.to_thread(self._registry().versions.current)
        if current is None or (self.serving is not None and self.serving.version == current.version):
            return
        if await asyncio.to_thread(self._registry().segments.get_lineage, current.version) is None:
            with contextlib.suppress(ModelRefused):
                await self._apply(current, None, "catch-up")

    def _registry(self) -> Registry:
        if self.registry is None:
            raise RuntimeError("the assigner is not initialised yet")
        return self.registry

    def _serve(self, bundle: ModelBundle, serving: Serving) -> None:
        self.bundle, self.serving = bundle, serving
        self.online = OnlineAssigner(bundle, serving, self.params, self.store, self.features, self._registry())
        self.metrics.serving_version.set(serving.version)

    # --- consuming -----------------------------------------------------------------------------------------
    async def _consume(self) -> None:
        while True:
            records = await self.link.getmany(timeout_ms=500)
            if not records:
                continue
            try:
                async with self.lock:
                    await self._handle(records)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("assigner.batch_failed", records=len(records), error=repr(exc), exc_info=exc)
                self.link.rewind(records)
                await asyncio.sleep(1.0)
                continue
            await self.link.commit(records)

    async def _handle(self, records: Sequence[ConsumerRecord]) -> None:
        features: list[dict[str, Any]] = []
        for record in records:
            try:
                data = decode_event(record.value, record.headers, record.key).data or {}
            except EventDecodeError as exc:
                self.metrics.events_skipped.labels(record.topic).inc()
                log.warning("assigner.event_unreadable", topic=record.topic, offset=record.offset, error=str(exc))
                continue
            if record.topic == MODELS_PUBLISHED:
                await self.on_published(data)
            elif record.topic == FEATURES_UPDATED:
                features.append(data)
        if features:
            await self.on_features(features)

    async def on_published(self, data: dict[str, Any]) -> None:
        """Apply an announced version unless it is serving already or was applied before (a re-announcement)."""
        await self._resume_pending()
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            self.metrics.events_skipped.labels(MODELS_PUBLISHED).inc()
            log.warning("assigner.announcement_invalid", error=f"version: must be an integer, got {version!r}")
            return
        if self.serving is not None and self.serving.version == version:
            log.info("assigner.announcement_duplicate", version=version)
            return
        try:
            info = await asyncio.to_thread(self._registry().versions.get, version)
        except NotFoundError:
            self.metrics.refusals.inc()
            log.error("assigner.model_refused", version=version, error="not in the registry")
            return
        if await asyncio.to_thread(self._registry().segments.get_lineage, version) is not None:
            log.info("assigner.announcement_already_applied", version=version)
            return
        with contextlib.suppress(ModelRefused):
            await self._apply(info, data.get("sha256"), "published")

    async def on_features(self, events: list[dict[str, Any]]) -> None:
        record = await asyncio.to_thread(self.store.serving)
        if record is not None and (self.serving is None or int(record["version"]) != self.serving.version):
            await self._load_serving()  # another replica relabelled: serve what Redis serves
        if self.online is None:
            return  # no model yet: the first relabel covers every eligible retailer
        started = time.perf_counter()
        decision = await asyncio.to_thread(self.online.decide, events)
        await publish(self.link, self.metrics, change_records(decision.changes), decision.changes)
        await asyncio.to_thread(self.online.commit, decision)
        self.metrics.online_retailers.inc(decision.retailers)
        self.metrics.online_seconds.observe(time.perf_counter() - started)

    # --- relabel -------------------------------------------------------------------------------------------
    async def promote(self, version: int) -> dict[str, Any]:
        """Make ``version`` current and relabel with it (roll back or forward). Raises NotFoundError,
        ModelRefused (nothing changed)."""
        async with self.lock:
            await self._resume_pending()
            info = await asyncio.to_thread(self._registry().versions.get, version)
            if self.serving is not None and self.serving.version == version:
                await asyncio.to_thread(self._registry().versions.promote, version)
                return {"version": version, "previous_version": version, "changes": 0, "lineage": None}
            pending = await self._apply(info, None, "promote")
            return {"version": version, "previous_version": pending.previous_version, "counts": pending.counts,
                    "changes": len(pending.changes), "lineage": pending.lineage}

    async def _apply(self, info: ModelVersionInfo, announced_sha: str | None, trigger: str) -> PendingRelabel:
        serving = None if self.serving is None else self.serving.version
        applied = await self.relabeller.apply(info, announced_sha, trigger, serving=serving)
        self._serve(applied.bundle, applied.serving)
        return applied.pending

    async def _resume_pending(self) -> None:
        """Finish a relabel that stopped after staging, then serve its model."""
        pending = await self.relabeller.resume()
        if pending is None:
            return
        info = await asyncio.to_thread(self._registry().versions.get, pending.version)
        record = await asyncio.to_thread(self.store.serving)
        with contextlib.suppress(ModelRefused):
            self._serve(await asyncio.to_thread(self.loader.load, info), Serving.from_json(record))
