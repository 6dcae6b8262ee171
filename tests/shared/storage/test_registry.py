"""The SQL registry on SQLite and PostgreSQL (``sql_url``): migrations, numbering, aliases, segments, history,
locks, and that a crash mid-transaction leaves nothing half-written."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from services.cli.db import app as db_app
from shared.storage import AssignmentChange, NotFoundError, Registry, SegmentInfo, StateError, upgrade_database
from shared.storage.db import current_revision, downgrade_database, head_revision, make_engine
from shared.storage.models import Base
from shared.storage.registry import AssignmentHistory, Database, Explorer, Locks, Segments, Versions

pytestmark = pytest.mark.xdist_group("sql")

SHA = "ab" * 32
T0 = datetime(2024, 1, 31, 12, tzinfo=UTC)
TABLES = {"model_versions", "aliases", "segments", "segment_id_state", "assignments", "lineage", "locks"}


def _register(reg: Registry, **overrides: Any) -> int:
    fields = {"feature_set": "seed-v1", "params": {"latent_dim": 5}, "metrics": {"latent": {"clusters": 4}, "raw": {}},
              "training_rows": 120, "data_as_of": "2024-01", "seed": 42}
    return reg.versions.register_candidate(**(fields | overrides))


def _publish(reg: Registry) -> int:
    version = _register(reg)
    reg.versions.mark_published(version, f"file:///artifacts/v{version}", SHA)
    return version


def _fail_on(engine: sa.Engine, predicate: Callable[[str], bool]) -> Callable[[], None]:
    """Make the first statement matching ``predicate`` raise (a crash inside the transaction); returns undo."""

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        if predicate(statement):
            raise RuntimeError("simulated crash")

    sa.event.listen(engine, "before_cursor_execute", before)
    return lambda: sa.event.remove(engine, "before_cursor_execute", before)


# --- migrations ---------------------------------------------------------------------------------------------
def test_migrations_upgrade_from_empty_match_the_models_and_downgrade(sql_url: str) -> None:
    assert current_revision(sql_url) is None
    assert upgrade_database(sql_url) == head_revision()
    assert upgrade_database(sql_url) == head_revision()  # idempotent
    engine = make_engine(sql_url)
    try:
        with engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= TABLES
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []  # the migration builds exactly the ORM schema
        assert downgrade_database(engine, "base") == ""  # and back to empty
        with engine.connect() as conn:
            assert not TABLES & set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_concurrent_upgrades_from_several_processes(sql_url: str) -> None:
    script = f"from shared.storage import upgrade_database; print(upgrade_database({sql_url!r}))"
    replicas = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in replicas]
    assert [p.returncode for p in replicas] == [0, 0], [err for _, err in outputs]
    assert [out.split()[-1] for out, _ in outputs] == [head_revision()] * 2
    assert current_revision(sql_url) == head_revision()


def test_cli_db_upgrade_and_current(sql_url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(db_app, ["upgrade", "--url", sql_url])
    assert first.exit_code == 0 and f"empty -> revision {head_revision()}" in first.output
    again = runner.invoke(db_app, ["upgrade", "--url", sql_url])
    assert again.exit_code == 0 and "already at revision" in again.output
    assert "up to date" in runner.invoke(db_app, ["current", "--url", sql_url]).output
    broken = runner.invoke(db_app, ["upgrade", "--url", "postgresql+psycopg://u:secret@127.0.0.1:1/none"])
    assert broken.exit_code == 1 and "database upgrade failed" in broken.output and "secret" not in broken.output


# --- versions and aliases -----------------------------------------------------------------------------------
def test_version_numbers_are_unique_and_dense_under_concurrent_registration(registry: Registry, sql_url: str) -> None:
    numbers: list[int] = []
    errors: list[Exception] = []

    def replica() -> None:
        with Registry(sql_url) as reg:  # its own engine and pool, like another process
            try:
                numbers.extend(_register(reg) for _ in range(4))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(numbers) == list(range(1, 21))
    assert [v.version for v in registry.versions.list_versions()] == list(range(1, 21))


def test_each_resource_is_its_own_class_on_one_database(registry: Registry, sql_url: str) -> None:
    parts = {"versions": Versions, "segments": Segments, "assignments": AssignmentHistory, "locks": Locks,
             "explorer": Explorer}
    for name, kind in parts.items():
        part = getattr(registry, name)
        assert type(part) is kind and part.db is registry, name
        public = [n for n in dir(part) if not n.startswith("_") and n != "db"]
        assert 0 < len(public) <= 10, (name, public)  # each resource small
    # the registry answers no resource's methods itself: callers name the part
    for gone in ("get", "current", "upsert_segments", "history", "acquire_training_lock", "flows", "set_artifact"):
        assert not hasattr(registry, gone), gone
    # a part works on a Database of its own, without the registry
    # a part works on a Database of its own, without the facade
    with Database(sql_url) as db:
        version = Versions(db).register_candidate(
            feature_set="seed-v1", params={}, metrics={"latent": {}, "raw": {}}, training_rows=1,
            data_as_of="2024-01", seed=1,
        )
        assert Versions(db).mark_published(version, "file:///a/v", SHA).aliases == ("current",)
        assert Segments(db).get_next_segment_number() == 1 and Locks(db).acquire_training_lock("me", 60)
    assert registry.versions.current().version == version and registry.locks.lock_holder("training")[0] == "me"


def test_register_validates_input_with_the_field_name(registry: Registry) -> None:
    with pytest.raises(ValueError, match="data_as_of"):
        _register(registry, data_as_of="2024-13")
    with pytest.raises(ValueError, match="metrics"):
        _register(registry, metrics={"latent": {"ari": float("nan")}})
    with pytest.raises(ValueError, match="training_rows"):
        _register(registry, training_rows=-1)
    with pytest.raises(ValueError, match="sha256"):
        _register(registry, sha256="not-a-digest")
    assert registry.versions.list_versions() == []


def test_publish_sets_current_atomically_with_the_artifact(registry: Registry) -> None:
    assert registry.versions.current() is None
    version = _register(registry, tags={"trigger": "month-closed"})
    with pytest.raises(StateError, match="artifact_uri"):
        registry.versions.mark_published(version)  # no artifact yet: refused, nothing changes
    assert registry.versions.get(version).status == "candidate" and registry.versions.current() is None
    info = registry.versions.mark_published(version, "file:///artifacts/v1", SHA)
    current = registry.versions.current()
    assert current is not None and current.version == version == info.version
    assert (current.status, current.artifact_uri, current.sha256, current.aliases) == (
        "published", "file:///artifacts/v1", SHA, ("current",))
    assert current.tags == {"trigger": "month-closed"} and current.metrics["latent"] == {"clusters": 4}
    assert current.created_at.tzinfo is not None
    with pytest.raises(StateError, match="only a candidate"):
        registry.versions.mark_published(version, "file:///other", SHA)


def test_the_database_refuses_a_published_row_without_artifact(registry: Registry) -> None:
    version = _register(registry)
    with pytest.raises(IntegrityError), registry.engine.begin() as conn:
        conn.execute(sa.text("UPDATE model_versions SET status = 'published' WHERE version = :v"), {"v": version})
    assert registry.versions.get(version).status == "candidate"


def test_reject_keeps_current(registry: Registry) -> None:
    first = _publish(registry)
    second = _register(registry, sha256=SHA, artifact_uri="file:///artifacts/v2")
    with pytest.raises(ValueError, match="reason"):
        registry.versions.mark_rejected(second, " ")
    registry.versions.mark_rejected(second, "gate: noise_ratio 0.71 > 0.5")
    assert registry.versions.current().version == first
    rejected = registry.versions.get(second)
    assert (rejected.status, rejected.reason) == ("rejected", "gate: noise_ratio 0.71 > 0.5")
    with pytest.raises(StateError):
        registry.versions.mark_published(second)
    with pytest.raises(StateError, match="published"):
        registry.versions.promote(second)
    with pytest.raises(NotFoundError):
        registry.versions.mark_rejected(99, "no such version")


def test_promote_rolls_back_and_forward(registry: Registry) -> None:
    first, second = _publish(registry), _publish(registry)
    assert registry.versions.current().version == second
    registry.versions.promote(first)
    assert registry.versions.current().version == first
    assert registry.versions.get(second).status == "published"  # rolling back does not change the version itself
    registry.versions.promote(second)
    assert registry.versions.current().version == second
    with pytest.raises(StateError, match="alias"):
        registry.versions.retire(second)  # still current
    registry.versions.retire(first, "superseded")
    assert [(v.version, v.status, v.aliases) for v in registry.versions.list_versions()] == [
        (first, "retired", ()), (second, "published", ("current",))]
    with pytest.raises(StateError):
        registry.versions.promote(first)
    registry.versions.set_alias("previous", second)
    assert registry.versions.get_alias("previous").version == second and registry.versions.get_alias("nope") is None


# --- segments, segment ids, lineage ------------------------------------------------------------------------
def test_segments_ids_and_lineage_change_together(registry: Registry) -> None:
    version = _publish(registry)
    assert registry.segments.get_next_segment_number() == 1
    lineage = {"model_version": version, "previous_version": None, "born": ["seg-0001", "seg-0002"], "continued": []}
    segments = [SegmentInfo("seg-0001", "steady", version, version, size=70, profile={"seasonality": [1] * 12}),
                SegmentInfo("seg-0002", "summer", version, version, size=30)]
    registry.segments.upsert_segments(segments, next_number=3, lineage=lineage)
    assert registry.segments.get_next_segment_number() == 3
    assert registry.segments.get_lineage(version).payload == lineage
    assert [(s.segment_id, s.size) for s in registry.segments.list_segments()] == [("seg-0001", 70), ("seg-0002", 30)]

    second = _publish(registry)
    child = SegmentInfo("seg-0003", "summer-north", second, second, size=12, parent_segment="seg-0002")
    registry.segments.upsert_segments([SegmentInfo("seg-0001", "steady", second, second, size=75), child],
                                      next_number=4, retire=["seg-0002"])
    first = registry.segments.get_segment("seg-0001")
    assert (first.first_version, first.last_version, first.size) == (version, second, 75)  # first_version kept
    assert registry.segments.get_segment("seg-0002").status == "retired"
    assert registry.segments.get_segment("seg-0003").parent_segment == "seg-0002"
    assert [s.segment_id for s in registry.segments.list_segments("active")] == ["seg-0001", "seg-0003"]


def test_segment_ids_are_never_reused(registry: Registry) -> None:
    version = _publish(registry)
    registry.segments.upsert_segments([SegmentInfo("seg-0001", "a", version, version)], next_number=2)
    with pytest.raises(ValueError, match="next_number"):
        registry.segments.upsert_segments([], next_number=1)  # backwards
    with pytest.raises(ValueError, match="seg-0005"):
        registry.segments.upsert_segments([SegmentInfo("seg-0005", "b", version, version)])  # beyond the counter
    registry.segments.retire_segments(["seg-0001"])
    with pytest.raises(StateError, match="retired"):
        registry.segments.upsert_segments([SegmentInfo("seg-0001", "a again", version, version)])
    with pytest.raises(NotFoundError):
        registry.segments.retire_segments(["seg-0042"])
    with pytest.raises(ValueError, match="status"):
        registry.segments.upsert_segments([SegmentInfo("seg-0001", "a", version, version, status="gone")])
    assert registry.segments.get_next_segment_number() == 2 and len(registry.segments.list_segments()) == 1


# --- assignment history --------------------------------------------------------------------------------------
def test_assignment_history_closes_and_opens_rows(registry: Registry) -> None:
    v1, v2 = _publish(registry), _publish(registry)
    first = [
        AssignmentChange("s1", "seg-0001", "assigned", 0.9, "new-retailer"),
        AssignmentChange("s2", "seg-0002", "assigned", 0.5, "new-retailer"),
        AssignmentChange("s3", None, "noise"),
    ]
    assert registry.assignments.record_assignments(first, v1, T0) == 3
    t1 = T0 + timedelta(days=30)
    second = [{"shop_id": "s1", "to_segment": "seg-0002", "strength": 0.7, "reason": "retrain"},  # topic shape
              AssignmentChange("s2", "seg-0002", "assigned", 0.5, "retrain"),  # same state under v2: a new row
              AssignmentChange("s4", "seg-0001", "assigned", 1.0, "new-retailer")]
    assert registry.assignments.record_assignments(second, v2, t1) == 3
    assert registry.assignments.record_assignments(second, v2, t1) == 0  # a replay changes nothing
    history = registry.assignments.history("s1")
    assert [(h.segment_id, h.model_version, h.valid_from, h.valid_to) for h in history] == [
        ("seg-0001", v1, T0, t1), ("seg-0002", v2, t1, None)]
    assert [h.valid_to for h in registry.assignments.history("s3")] == [None]  # untouched retailers keep their row
    current = registry.assignments.current_assignments()
    assert {k: (v.segment_id, v.status) for k, v in current.items()} == {
        "s1": ("seg-0002", "assigned"), "s2": ("seg-0002", "assigned"), "s3": (None, "noise"),
        "s4": ("seg-0001", "assigned")}
    assert registry.assignments.current_assignment("s9") is None and registry.assignments.history("s9") == []
    with pytest.raises(ValueError, match="at"):
        # before the current row
        registry.assignments.record_assignments([AssignmentChange("s1", None, "noise")], v2, T0)


def test_assignment_input_errors_name_the_field(registry: Registry) -> None:
    version = _publish(registry)
    cases = [([AssignmentChange("s1", None, "assigned")], "segment_id"),
             ([AssignmentChange("s1", "seg-0001", "bogus")], "status"),
             ([AssignmentChange("s1", "seg-0001", strength=1.5)], "strength"),
             ([AssignmentChange("", "seg-0001")], "shop_id"),
             ([{"shop_id": "s1", "to_segment": None}], "status"),
             ([AssignmentChange("s1", "seg-0001"), AssignmentChange("s1", "seg-0002")], "more than once")]
    for changes, field in cases:
        with pytest.raises(ValueError, match=field):
            registry.assignments.record_assignments(changes, version, T0)
    assert registry.assignments.current_assignments() == {}


def test_many_assignments_in_chunks(registry: Registry) -> None:
    version = _publish(registry)
    shops = [f"shop-{i:05d}" for i in range(2500)]  # three chunks of the IN/ANY lists
    opened = [AssignmentChange(s, "seg-0001", "assigned", 0.5) for s in shops]
    assert registry.assignments.record_assignments(opened, version, T0)
    moved = [AssignmentChange(s, None, "noise", 0.1) for s in shops[::2]]
    assert registry.assignments.record_assignments(moved, version, T0 + timedelta(hours=1)) == 1250
    current = registry.assignments.current_assignments(shops[:4])
    assert [current[s].status for s in shops[:4]] == ["noise", "assigned", "noise", "assigned"]
    assert len(registry.assignments.current_assignments()) == 2500
    assert len(registry.assignments.history(shops[0])) == 2 and len(registry.assignments.history(shops[1])) == 1


# --- locks ---------------------------------------------------------------------------------------------------
def test_training_lock_is_exclusive_across_registries(registry: Registry, sql_url: str) -> None:
    with Registry(sql_url) as other:
        assert registry.locks.acquire_training_lock("trainer-a", ttl_seconds=60)
        assert not other.locks.acquire_training_lock("trainer-b", ttl_seconds=60)
        assert other.locks.lock_holder("training")[0] == "trainer-a"
        assert registry.locks.acquire_training_lock("trainer-a", ttl_seconds=60)  # the holder may extend
        assert not other.locks.release_training_lock("trainer-b")  # not its lease
        assert registry.locks.release_training_lock("trainer-a")
        assert other.locks.acquire_training_lock("trainer-b", ttl_seconds=0.5)
        time.sleep(0.8)  # trainer-b "died": its lease expires and can be taken over
        assert other.locks.lock_holder("training") is None
        assert registry.locks.acquire_training_lock("trainer-a", ttl_seconds=60)
        assert not other.locks.release_training_lock("trainer-b")


def test_training_lock_race_has_one_winner(registry: Registry, sql_url: str) -> None:
    winners: list[str] = []
    barrier = threading.Barrier(6)

    def contender(name: str) -> None:
        with Registry(sql_url) as reg:
            reg.segments.get_next_segment_number()  # connect before the race starts
            barrier.wait()
            if reg.locks.acquire_training_lock(name, ttl_seconds=60):
                winners.append(name)

    threads = [threading.Thread(target=contender, args=(f"replica-{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert registry.locks.lock_holder("training")[0] == winners[0]


# --- crashes -------------------------------------------------------------------------------------------------
def test_crash_while_publishing_leaves_the_candidate_untouched(registry: Registry) -> None:
    first = _publish(registry)
    second = _register(registry)
    undo = _fail_on(registry.engine, lambda sql: "aliases" in sql)  # after the model_versions UPDATE ran
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            registry.versions.mark_published(second, "file:///artifacts/v2", SHA)
    finally:
        undo()
    half = registry.versions.get(second)
    assert (half.status, half.artifact_uri, half.sha256) == ("candidate", None, None)
    assert registry.versions.current().version == first


def test_crash_midway_through_assignments_or_segments_rolls_everything_back(registry: Registry) -> None:
    version = _publish(registry)
    shops = [f"s{i}" for i in range(1500)]
    registry.assignments.record_assignments([AssignmentChange(s, "seg-0001", "assigned") for s in shops], version, T0)
    selects = []

    def second_chunk(sql: str) -> bool:  # the first 1000 retailers are closed and re-opened by then
        selects.append(sql.lstrip().upper().startswith("SELECT") and "assignments" in sql)
        return sum(selects) == 2

    undo = _fail_on(registry.engine, second_chunk)
    try:
        with pytest.raises(RuntimeError):
            changes = [AssignmentChange(s, None, "noise") for s in shops]
            registry.assignments.record_assignments(changes, version, T0 + timedelta(1))
    finally:
        undo()
    current = registry.assignments.current_assignments()
    assert {a.status for a in current.values()} == {"assigned"} and len(current) == 1500
    assert all(len(registry.assignments.history(s)) == 1 for s in shops[:5])

    undo = _fail_on(registry.engine, lambda sql: "segment_id_state" in sql and sql.lstrip().upper().startswith("UPD"))
    try:
        with pytest.raises(RuntimeError):
            registry.segments.upsert_segments([SegmentInfo("seg-0001", "a", version, version)], next_number=2)
    finally:
        undo()
    assert registry.segments.list_segments() == [] and registry.segments.get_next_segment_number() == 1


def test_killed_process_mid_publish_leaves_nothing_half_registered(registry: Registry, sql_url: str) -> None:
    version = _register(registry)
    script = textwrap.dedent(f"""
        import os, sqlalchemy as sa
        from shared.storage import Registry
        reg = Registry({sql_url!r})
        def die(conn, cursor, statement, *args):
            if "aliases" in statement:  # the version row is already updated inside the open transaction
                os._exit(9)
        sa.event.listen(reg.engine, "before_cursor_execute", die)
        reg.versions.mark_published({version}, "file:///artifacts/v1", {SHA!r})
    """)
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert process.returncode == 9, process.stderr
    after = registry.versions.get(version)
    assert (after.status, after.artifact_uri, after.sha256) == ("candidate", None, None)
    assert registry.versions.current() is None
    registry.versions.mark_published(version, "file:///artifacts/v1", SHA)  # and the database is not left locked
    assert registry.versions.current().version == version
