"""The embedded Redis and SQLite registry the assigner benchmarks write to, and the relabel's durable effects as
the service runs them (``bench_scale.py relabel``, ``bench_assigner.py relabel`` and ``api``).

Imported by the scripts beside it (their folder is first on ``sys.path`` when run as ``python bench/<script>.py``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.assigner.ledger import next_states, persist_sql, serving_record
from services.assigner.pending import PendingRelabel
from services.assigner.relabel import RelabelOutcome
from services.assigner.store import AssignmentStore
from shared.stack import EmbeddedRedis, free_port
from shared.storage import Registry, upgrade_database
from shared.storage.models import utcnow


@dataclass(frozen=True)
class Stores:
    """A temporary folder holding an embedded Redis (running) and a migrated SQLite registry."""

    folder: Path
    redis: EmbeddedRedis
    database_url: str


@contextmanager
def embedded_stores() -> Iterator[Stores]:
    """An embedded Redis and a SQLite registry in a temporary folder, removed (Redis stopped) on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = EmbeddedRedis(free_port(), folder / "redis", die_with_parent=True)
        server.start()
        try:
            url = f"sqlite:///{folder / 'bench.db'}"
            upgrade_database(url)
            yield Stores(folder, server, url)
        finally:
            server.stop()


def publish_version(registry: Registry, feature_set: str, version: int, rows: int, artifact_uri: str) -> int:
    """Register and publish model ``version`` (a placeholder artifact, sha256 = the version in hex); its number."""
    number = registry.versions.register_candidate(feature_set=feature_set, params={}, metrics={}, training_rows=rows,
                                                  data_as_of="2025-12", seed=version, artifact_uri=artifact_uri,
                                                  sha256=f"{version:064x}")
    registry.versions.mark_published(number)
    return number


def persist_relabel(store: AssignmentStore, registry: Registry, outcome: RelabelOutcome,
                    previous: Any = None) -> dict[str, Any]:
    """The relabel's durable effects in the service's order: write-ahead record + next Redis generation staged,
    the SQL work, the switch. Seconds of each step and the history rows written."""
    at = utcnow()
    model = {"version": outcome.version, "sha256": None, "artifact_uri": None}
    started = time.perf_counter()
    pending = PendingRelabel.from_outcome(outcome, model, at, "bench")
    gen = store.stage(next_states(outcome, previous, at), serving_record(outcome, model), pending.to_json())
    staged = time.perf_counter()
    persist_sql(registry, pending)
    written = time.perf_counter()
    store.switch(gen)
    switched = time.perf_counter()
    return {"stage": staged - started, "sql": written - staged, "switch": switched - written,
            "total": switched - started, "history_rows": len(pending.history)}
