"""Relabelling with a model version, in the order of effects of :mod:`services.assigner.ledger`: verify + load the
bundle (a refused model changes nothing), compute, stage the next Redis generation with its write-ahead record,
then finish: SQL, the ``current`` alias on a promotion, the events, the switch. ``resume`` finishes a relabel that
stopped after staging (crash, broker outage) exactly as it was decided.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from services.assigner.book import Book, Serving
from services.assigner.ledger import load_book, next_states, persist_sql, serving_record
from services.assigner.link import KafkaLink
from services.assigner.loader import BundleLoader, ModelRefused
from services.assigner.metrics import AssignerMetrics
from services.assigner.pending import PendingRelabel
from services.assigner.publishing import SOURCE, publish
from services.assigner.relabel import RelabelOutcome, relabel
from services.assigner.store import AssignmentStore
from shared.feature_store import FeatureStore
from shared.logging import get_logger
from shared.model.bundle import ModelBundle
from shared.segments import MatchParams
from shared.storage import ModelVersionInfo, Registry
from shared.storage.models import utcnow

log = get_logger("stableseg.assigner")


@dataclass(frozen=True)
class Applied:
    """A finished relabel and the model that now serves."""

    pending: PendingRelabel
    bundle: ModelBundle
    serving: Serving


@dataclass
class Relabeller:
    """The relabel path of the assigner (the caller holds the assigner's lock)."""

    registry: Callable[[], Registry]
    store: AssignmentStore
    features: FeatureStore
    loader: BundleLoader
    link: KafkaLink
    metrics: AssignerMetrics
    params: MatchParams

    async def apply(self, info: ModelVersionInfo, announced_sha: str | None, trigger: str,
                    serving: int | None = None) -> Applied:
        """Relabel every eligible retailer with ``info``; ModelRefused (counted, logged) changes nothing.
        ``serving`` is the version serving now (for the log)."""
        started = time.perf_counter()
        try:
            bundle = await asyncio.to_thread(self.loader.load, info, announced_sha)
            features = await asyncio.to_thread(self._snapshot, info.feature_set)
        except ModelRefused as exc:
            self.metrics.refusals.inc()
            log.error("assigner.model_refused", version=info.version, trigger=trigger, error=str(exc),
                      serving=serving)
            raise
        book = await asyncio.to_thread(load_book, self.registry(), self.store)
        outcome = await asyncio.to_thread(relabel, book, features, bundle, info.version, self.params)
        model = {"version": info.version, "sha256": info.sha256, "artifact_uri": info.artifact_uri,
                 "feature_set": info.feature_set}
        # built in the worker thread too: at 1M retailers the write-ahead record alone is seconds of CPU, which
        # on the event loop would stall every API request meanwhile
        gen, pending = await asyncio.to_thread(self._stage, outcome, book, model, trigger)
        await self.finish(gen, pending)
        self.metrics.relabels.labels(trigger).inc()
        seconds = time.perf_counter() - started
        self.metrics.relabel_seconds.observe(seconds)
        log.info("assigner.relabelled", version=info.version, previous=book.version, trigger=trigger,
                 seconds=round(seconds, 2), **outcome.counts, lineage=outcome.lineage)
        return Applied(pending, bundle, outcome.serving)

    def _stage(self, outcome: RelabelOutcome, book: Book, model: dict[str, Any], trigger: str
               ) -> tuple[int, PendingRelabel]:
        """The write-ahead record and the next generation, staged; returns its number and the record."""
        at = utcnow()
        pending = PendingRelabel.from_outcome(outcome, model, at, trigger)
        states = next_states(outcome, book.assignments, at)
        return self.store.stage(states, serving_record(outcome, model), pending.to_json()), pending

    def _snapshot(self, feature_set: str) -> pd.DataFrame:
        frame = self.features.snapshot(feature_set, eligible_only=True)
        if frame.empty:
            raise ModelRefused(f"the feature store has no eligible retailers for feature set {feature_set!r}")
        return frame.drop(columns=["as_of"], errors="ignore")

    async def finish(self, gen: int, pending: PendingRelabel) -> None:
        """The staged relabel's SQL work, alias, events, then the switch to its generation (idempotent)."""
        registry = self.registry()
        await asyncio.to_thread(persist_sql, registry, pending)
        if pending.promote:
            await asyncio.to_thread(registry.versions.promote, pending.version)
        records = await asyncio.to_thread(pending.event_records, SOURCE)  # one encoded event per change
        await publish(self.link, self.metrics, records, pending.changes)
        await asyncio.to_thread(self.store.switch, gen)

    async def resume(self) -> PendingRelabel | None:
        """Finish what a relabel left staged; the finished relabel, or None when there was none to finish."""
        staged = await asyncio.to_thread(self.store.pending)
        if staged is None:
            return None
        gen, record = staged
        if record.get("rebuild"):  # a generation rebuilt from SQL: nothing to do but the switch
            await asyncio.to_thread(self.store.switch, gen)
            return None
        pending = PendingRelabel.from_json(record)
        log.warning("assigner.resuming_relabel", version=pending.version, generation=gen)
        await self.finish(gen, pending)
        return pending
