"""Registry write/read speed: bulk assignment history (the assigner's retrain batch) on SQLite and PostgreSQL.

Run: ``.venv/bin/python bench/bench_registry.py [--rows 60000] [--postgres URL]``; prints one JSON object per
backend (wall and client CPU seconds per step). PostgreSQL runs in a temporary schema of the given database
(dropped afterwards).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from shared.storage import AssignmentChange, Registry, upgrade_database

T0 = datetime(2024, 1, 31, tzinfo=UTC)


@contextmanager
def _postgres_schema(base_url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield sa.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _timed(fn: Callable[[], object]) -> dict[str, float]:
    """Wall seconds and this process's CPU seconds (SQLite runs in-process; PostgreSQL's server CPU is not counted):
    on a busy machine the CPU figure is the better estimate of the unloaded time."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return {"wall": round(time.perf_counter() - wall, 3), "cpu": round(time.process_time() - cpu, 3)}


def run(url: str, rows: int) -> dict[str, object]:
    upgrade_database(url)
    shops = [f"shop-{i:06d}" for i in range(rows)]
    with Registry(url) as reg:
        result: dict[str, object] = {"backend": reg.engine.dialect.name, "rows": rows, "unit": "seconds"}
        result["register_20_versions"] = _timed(lambda: [reg.versions.register_candidate(
            feature_set="b", params={}, metrics={}, training_rows=rows, data_as_of="2024-01", seed=1)
            for _ in range(20)])
        first = [AssignmentChange(s, f"seg-{i % 7:04d}", "assigned", 0.8) for i, s in enumerate(shops)]
        result["open_all"] = _timed(lambda: reg.assignments.record_assignments(first, 1, T0))
        moved = [AssignmentChange(s, f"seg-{(i + 1) % 7:04d}", "assigned", 0.7) for i, s in enumerate(shops)]
        later = T0 + timedelta(days=30)
        result["close_and_reopen_all"] = _timed(lambda: reg.assignments.record_assignments(moved, 2, later))
        result["replay_no_change"] = _timed(lambda: reg.assignments.record_assignments(moved, 2, later))
        result["read_all_current"] = _timed(reg.assignments.current_assignments)
        result["history_1000_shops"] = _timed(lambda: [reg.assignments.history(s) for s in shops[:1000]])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--postgres", help="PostgreSQL URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(f"sqlite:///{tmp}/bench.db", args.rows)))
    if args.postgres:
        with _postgres_schema(args.postgres) as url:
            print(json.dumps(run(url, args.rows)))


if __name__ == "__main__":
    main()
