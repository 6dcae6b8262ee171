"""Registry versions (``/ui/models``) and the latest segment changes (``/ui/changes``)."""

from __future__ import annotations

from typing import Any

from services.assigner.ui import charts
from services.assigner.ui.views.common import Sources
from shared.storage import ModelVersionInfo
from shared.storage.explore import ChangeRow

SPACE_KEYS = ("clusters", "noise_ratio", "largest_share", "ari", "dbcv", "silhouette")
GATES = {"published": "passed", "rejected": "refused", "candidate": "not decided yet", "retired": "passed, retired"}
REASONS = ("retrain", "features", "new-retailer")
CHANGES_LIMIT = 200


def _space(metrics: dict[str, Any], space: str) -> dict[str, Any]:
    values = metrics.get(space) if isinstance(metrics.get(space), dict) else {}
    return {k: values.get(k) for k in SPACE_KEYS if isinstance(values.get(k), int | float)}


def model_row(info: ModelVersionInfo, serving: int | None) -> dict[str, Any]:
    metrics = info.metrics if isinstance(info.metrics, dict) else {}
    return {"version": info.version, "status": info.status, "gate": GATES.get(info.status, info.status),
            "reason": info.reason, "created_at": info.created_at, "data_as_of": info.data_as_of,
            "rows": info.training_rows, "feature_set": info.feature_set, "aliases": list(info.aliases),
            "serving": info.version == serving, "latent": _space(metrics, "latent"), "raw": _space(metrics, "raw"),
            "served": metrics.get("served") if isinstance(metrics.get("served"), dict) else None}


def models(src: Sources, serving: dict[str, Any] | None, admin_enabled: bool) -> dict[str, Any]:
    """Every version with raw vs latent metrics and its gate outcome; which one serves."""
    version = None if serving is None else int(serving["version"])
    rows = [model_row(info, version) for info in src.registry.versions.list_versions()]
    figures = {}
    if rows:
        figures = {"noise": charts.model_metrics(rows, "noise_ratio", "Noise share: latent vs raw", percent=True),
                   "clusters": charts.model_metrics(rows, "clusters", "Clusters: latent vs raw")}
    return {"models": rows[::-1], "serving_version": version, "admin_enabled": admin_enabled, "charts": figures}


def change_json(row: ChangeRow) -> dict[str, Any]:
    return {"id": row.id, "shop_id": row.shop_id, "from_segment": row.from_segment, "to_segment": row.to_segment,
            "status": row.status, "strength": row.strength, "model_version": row.model_version, "reason": row.reason,
            "at": row.at.isoformat()}


def changes(src: Sources, segment: str | None, reason: str | None, after_id: int = 0) -> dict[str, Any]:
    """The latest changes of segment (newest first), filtered by segment (from or to) and reason."""
    rows = src.registry.explorer.recent_changes(CHANGES_LIMIT, segment=segment or None, reason=reason or None,
                                                after_id=after_id)
    return {"changes": [change_json(r) for r in rows], "segment": segment or "", "reason": reason or "",
            "segments": [s.segment_id for s in src.registry.segments.list_segments()], "reasons": REASONS,
            "last_id": max((r.id for r in rows), default=after_id), "limit": CHANGES_LIMIT}
