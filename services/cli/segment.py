"""``stableseg segment SHOP_ID``: a retailer's current segment (and optionally its history).

Asks the assigner API (``--url``, default ``http://127.0.0.1:$STABLESEG_ASSIGNER_PORT``); when the service is not
running, reads the same answer from the stores the service writes (Redis for the current segment, SQL for the
history). Exit code 1 for an unknown retailer, 2 when neither the API nor the stores can answer.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from shared.config import get_settings

console = Console()


def _from_api(url: str, shop_id: str, history: bool) -> tuple[int, dict[str, Any]]:
    with httpx.Client(base_url=url, timeout=10.0) as client:
        response = client.get(f"/v1/retailers/{shop_id}/{'history' if history else 'segment'}")
        body = response.json()
        if response.status_code == 200 and not history and body.get("segment_id"):
            segment = client.get(f"/v1/segments/{body['segment_id']}")
            if segment.status_code == 200:
                body.update({k: segment.json().get(k) for k in ("trust", "trust_level")})
        return response.status_code, body


def _segment_trust(segment_id: str | None) -> dict[str, Any]:
    """The segment's trust from the registry (the stores path of ``stableseg segment``)."""
    from sqlalchemy.exc import SQLAlchemyError

    from shared.model.selection import trust_level
    from shared.storage import Registry

    if not segment_id:
        return {}
    try:
        with Registry(get_settings().effective_database_url) as registry:
            info = registry.segments.get_segment(segment_id)
    except SQLAlchemyError:  # the segment is in Redis but the registry cannot say more: trust unknown
        return {"trust": None, "trust_level": None}
    trust = info.profile.get("trust") if info is not None and isinstance(info.profile, dict) else None
    return {"trust": trust, "trust_level": trust_level(trust)}


def _from_stores(shop_id: str, history: bool) -> tuple[int, dict[str, Any]]:
    from services.assigner.store import AssignmentStore
    from shared.storage import Registry

    settings = get_settings()
    if history:
        with Registry(settings.effective_database_url) as registry:
            rows = registry.assignments.history(shop_id)
        if not rows:
            return 404, {"detail": f"retailer {shop_id!r} has no recorded segment history"}
        return 200, {"shop_id": shop_id, "history": [
            {"segment_id": r.segment_id, "status": r.status, "strength": r.strength, "model_version": r.model_version,
             "reason": r.reason, "valid_from": r.valid_from.isoformat(),
             "valid_to": r.valid_to.isoformat() if r.valid_to else None} for r in rows]}
    store = AssignmentStore(settings.redis_url, cluster=settings.redis_cluster)
    try:
        if store.serving() is None:
            return 503, {"detail": "no model has been applied yet"}
        state = store.get(shop_id)
    finally:
        store.close()
    if state is None:
        return 404, {"detail": f"retailer {shop_id!r} has no assignment"}
    return 200, {"shop_id": shop_id, "segment_id": state["segment"], "segment_name": state["name"],
                 "strength": state["strength"], "status": state["status"], "model_version": state["model_version"],
                 "since": state["since"], **_segment_trust(state["segment"])}


def _print(body: dict[str, Any], history: bool) -> None:
    if not history:
        table = Table(show_header=False, box=None)
        for key in ("shop_id", "status", "segment_id", "segment_name", "strength", "trust", "trust_level",
                    "model_version", "since"):
            table.add_row(f"[bold]{key}[/bold]", str(body.get(key)))
        console.print(table)
        return
    table = Table("from", "to", "segment", "status", "strength", "model", "reason", title=f"shop {body['shop_id']}")
    for row in body["history"]:
        strength = "" if row.get("strength") is None else f"{row['strength']:.3f}"
        table.add_row(str(row["valid_from"]), str(row.get("valid_to") or "now"), str(row.get("segment_id") or "-"),
                      row["status"], strength, str(row.get("model_version")), str(row.get("reason") or ""))
    console.print(table)


def segment(
    shop_id: str = typer.Argument(..., help="the retailer's shop_id"),
    history: bool = typer.Option(False, "--history", help="the segment over time instead of the current one"),
    url: str | None = typer.Option(None, "--url", help="assigner API base URL"),
    as_json: bool = typer.Option(False, "--json", help="print the JSON answer"),
) -> None:
    """Print a retailer's current segment (from the assigner API, or the stores when it is not running)."""
    base = url or f"http://127.0.0.1:{get_settings().assigner_port}"
    try:
        status, body = _from_api(base, shop_id, history)
    except httpx.HTTPError:
        try:
            status, body = _from_stores(shop_id, history)
        except Exception as exc:
            console.print(f"[red]error:[/red] the assigner API at {base} is not reachable and the stores failed: {exc}")
            raise typer.Exit(2) from None
    if status != 200:
        console.print(f"[red]error ({status}):[/red] {body.get('detail', body)}")
        raise typer.Exit(1 if status == 404 else 2)
    if as_json:
        console.print_json(json.dumps(body))
    else:
        _print(body, history)
