"""``stableseg features get|export|rebuild``: read (or rebuild) the live feature store in Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import redis
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.cli.bars import bar_progress
from shared.config import get_settings, mask_url
from shared.feature_store import FeatureStore
from shared.features import FEATURE_SETS
from shared.logging import configure_logging

app = typer.Typer(help="Read the live feature store (Redis).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
EXIT_NOT_FOUND, EXIT_UNAVAILABLE = 1, 2
T = TypeVar("T")
_FS_HELP = f"feature set (default: $STABLESEG_FEATURE_SET); one of {sorted(FEATURE_SETS)}"


def _feature_set(name: str | None) -> str:
    name = name or get_settings().feature_set
    if name not in FEATURE_SETS:
        err.print(f"[red]error:[/red] --feature-set: unknown feature set {name!r}; known: {sorted(FEATURE_SETS)}")
        raise typer.Exit(EXIT_NOT_FOUND)
    return name


def _read(op: Callable[[FeatureStore], T]) -> T:
    """``op`` on the live feature store; Redis being unavailable exits with ``EXIT_UNAVAILABLE``."""
    settings = get_settings()
    try:
        return op(FeatureStore(settings.redis_url, cluster=settings.redis_cluster,
                               groups=settings.feature_store_slot_groups))
    except redis.RedisError as exc:
        err.print(f"[red]error:[/red] Redis at {mask_url(settings.redis_url)} is unavailable: {exc}")
        raise typer.Exit(EXIT_UNAVAILABLE) from None


@app.command("get")
def get(
    shop_id: str = typer.Argument(..., help="retailer id"),
    feature_set: str | None = typer.Option(None, "--feature-set", help=_FS_HELP),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """One retailer's live features (exit status 1 when the store does not know the retailer)."""
    name = _feature_set(feature_set)
    row = _read(lambda store: store.get(shop_id, name))
    if row is None:
        err.print(f"[red]error:[/red] shop_id: {shop_id!r} is not in the feature store ({name})")
        raise typer.Exit(EXIT_NOT_FOUND)
    if as_json:
        typer.echo(json.dumps(row))
        return
    table = Table(title=f"{shop_id} · {name}", show_header=False)
    for key, value in row.items():
        table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    console.print(table)


@app.command("export")
def export(
    out: Path = typer.Option(..., "--out", dir_okay=False, help="CSV to write"),
    feature_set: str | None = typer.Option(None, "--feature-set", help=_FS_HELP),
) -> None:
    """Every retailer as one CSV: shop_id, eligible, as_of, then the feature columns (a consistent snapshot)."""
    name = _feature_set(feature_set)
    rows = _read(lambda store: store.export_csv(out, name))
    err.print(f"wrote {rows} retailers ({name}) to {out}")


@app.command("rebuild")
def rebuild(
    publish: bool = typer.Option(False, "--publish", help="re-emit features.updated / months.closed / rejects"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
) -> None:
    """Wipe the store and replay sales.monthly from the earliest offsets (reproduces the store exactly)."""
    from services.features.rebuild import rebuild as run_rebuild

    settings = get_settings()
    configure_logging(settings.log_format, "WARNING")
    progress = Progress(TextColumn("[bold]rebuild"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err, transient=as_json)
    with progress:
        summary = run_rebuild(settings, publish=publish, progress=bar_progress(progress))
    if as_json:
        typer.echo(json.dumps(asdict(summary)))
    else:
        err.print(f"rebuilt epoch {summary.epoch}: {summary.records} records, {summary.shops} retailers, "
                  f"{summary.rejected} rejected, latest month {summary.latest_month}")
