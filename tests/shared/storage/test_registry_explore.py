"""The explorer's read-only registry queries (``shared/storage/explore.py``) on SQLite and PostgreSQL: sizes and
flows at the moments versions were applied, the latest changes with filters, members, shop ids by prefix."""

from __future__ import annotations

import pytest

from shared.storage import AssignmentChange, Registry
from shared.storage.models import utcnow

pytestmark = pytest.mark.xdist_group("sql")


def _version(reg: Registry) -> int:
    number = reg.versions.register_candidate(feature_set="behaviour-v2", params={}, metrics={"latent": {}},
                                             training_rows=5, data_as_of="2025-12", seed=1)
    return reg.versions.mark_published(number, f"file:///a/v{number}", "ab" * 32).version


def _apply(reg: Registry, version: int, previous: int | None, changes: list[AssignmentChange]) -> None:
    """What a relabel leaves: history rows at its time, then (later) the version's lineage row."""
    reg.assignments.record_assignments(changes, version, at=utcnow())
    reg.segments.upsert_segments([], lineage={"model_version": version, "previous_version": previous, "continued": [],
                                              "born": [], "retired": [], "split": [], "merged": []})


@pytest.fixture
def history(registry: Registry) -> Registry:
    """v1: a, b in seg-0001, c in seg-0002, d noise. v2: b moves to seg-0002, d joins it, e is new in seg-0001.
    After v2 (online): a becomes ineligible."""
    v1, v2 = _version(registry), _version(registry)
    _apply(registry, v1, None, [AssignmentChange("shop-a", "seg-0001", strength=0.9, reason="new-retailer"),
                                AssignmentChange("shop-b", "seg-0001", strength=0.8, reason="new-retailer"),
                                AssignmentChange("shop-c", "seg-0002", strength=0.7, reason="new-retailer"),
                                AssignmentChange("shop-d", None, "noise", 0.0)])
    _apply(registry, v2, v1, [AssignmentChange("shop-b", "seg-0002", strength=0.6, reason="retrain"),
                              AssignmentChange("shop-d", "seg-0002", strength=0.95, reason="retrain"),
                              AssignmentChange("x-e", "seg-0001", strength=0.5, reason="new-retailer")])
    left = AssignmentChange("shop-a", None, "ineligible", 0.0, "features")
    registry.assignments.record_assignments([left], v2, at=utcnow())
    return registry


def test_sizes_and_flows_at_the_moments_versions_were_applied(history: Registry) -> None:
    applied = history.segments.list_lineage()
    assert [e.model_version for e in applied] == [1, 2]
    # a's later ineligibility is not part of v2's sizes: they are the state right after v2's relabel
    assert history.explorer.sizes_by_version() == {1: {"seg-0001": 2, "seg-0002": 1}, 2: {"seg-0001": 2, "seg-0002": 3}}
    flows = sorted(history.explorer.flows(applied[0].created_at, applied[1].created_at), key=str)
    assert flows == sorted([("seg-0001", "assigned", "seg-0001", "assigned", 1),
                            ("seg-0001", "assigned", "seg-0002", "assigned", 1),
                            ("seg-0002", "assigned", "seg-0002", "assigned", 1),
                            (None, "noise", "seg-0002", "assigned", 1),
                            (None, "new", "seg-0001", "assigned", 1)], key=str)
    assert ("seg-0001", "assigned", None, "ineligible", 1) in history.explorer.flows(applied[1].created_at, utcnow())
    for segment in ("seg-0001", "seg-0002"):  # one segment's flows: the same rows, read from its members only
        touching = [f for f in flows if segment in (f[0], f[2])]
        read = history.explorer.segment_flows(segment, applied[0].created_at, applied[1].created_at)
        assert sorted(read, key=str) == touching


def test_recent_changes_members_and_prefix(history: Registry) -> None:
    rows = history.explorer.recent_changes()
    assert [(r.shop_id, r.from_segment, r.to_segment) for r in rows] == [
        ("shop-a", "seg-0001", None), ("x-e", None, "seg-0001"), ("shop-d", None, "seg-0002"),
        ("shop-b", "seg-0001", "seg-0002"), ("shop-c", None, "seg-0002"), ("shop-b", None, "seg-0001"),
        ("shop-a", None, "seg-0001"),
    ]
    # d's first row (noise) changed no segment: not a change
    assert {r.shop_id for r in history.explorer.recent_changes(segment="seg-0002")} == {"shop-b", "shop-c", "shop-d"}
    assert [r.shop_id for r in history.explorer.recent_changes(reason="retrain")] == ["shop-d", "shop-b"]
    assert [r.shop_id for r in history.explorer.recent_changes(limit=2)] == ["shop-a", "x-e"]
    assert [r.shop_id for r in history.explorer.recent_changes(after_id=rows[1].id)] == ["shop-a"]
    assert [m[0] for m in history.explorer.segment_members("seg-0002")] == ["shop-d", "shop-c", "shop-b"]  # by strength
    joined = history.assignments.history("x-e")[0].valid_from
    assert history.explorer.segment_members("seg-0001") == [("x-e", 0.5, joined)]
    assert history.explorer.shops_starting_with("shop-") == ["shop-a", "shop-b", "shop-c", "shop-d"]
    assert history.explorer.shops_starting_with("x") == ["x-e"] and history.explorer.shops_starting_with("zz") == []
