"""`stableseg generate`: synthetic FMCG sales in the Kaggle schema, with the planted archetypes as truth."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.cli.bars import bar_progress
from shared.data.generator import DEFAULT_END_YEAR
from shared.data.generator import generate as generate_data
from shared.data.plan import World

console = Console()
progress_console = Console(stderr=True)


def generate(
    retailers: int = typer.Option(..., "--retailers", min=1, help="shops in the base population"),
    years: int = typer.Option(..., "--years", min=1, help="calendar years of history"),
    seed: int = typer.Option(..., "--seed", min=0, help="random seed: the same seed gives byte-identical files"),
    out: Path = typer.Option(..., "--out", help="output folder (created if missing)"),
    drift_fraction: float = typer.Option(
        0.0, "--drift-fraction", min=0.0, max=1.0,
        help="fraction of eligible-looking shops that switch archetype at --drift-month; as many new shops "
             "(fraction x retailers) open that month"),
    drift_month: str | None = typer.Option(None, "--drift-month", help="YYYY-MM of the drift (with --drift-fraction)"),
    end_year: int = typer.Option(
        DEFAULT_END_YEAR, "--end-year", help="last calendar year: the data covers the --years full years ending here"),
    months: int | None = typer.Option(None, "--months", min=2, help="keep only the last MONTHS months of the span"),
    activity: float = typer.Option(
        1.0, "--activity", min=0.01, max=1.0, help="scale every shop's chance of an active month (sparse: < 1)"),
    breadth: float = typer.Option(1.0, "--breadth", min=0.5, max=10.0, help="scale products per active month"),
    mix: str = typer.Option("default", "--mix", help="archetype shares: default, uniform, skewed, or 6 weights"),
) -> None:
    """Write OUT/sales.csv (shop_id, product_id, year, month, sales_qty) and OUT/truth.csv (shop_id, archetype,
    archetype_after, changed_at): six planted behavioural archetypes with heavy-tailed shop sizes, late joiners,
    churners, gaps and short-lived shops. The years are the last --years full years ending with --end-year
    (default 2025)."""
    with Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TextColumn("shops"),
                  TimeElapsedColumn(), console=progress_console, transient=True) as bar:
        try:
            world = World(months=months, activity_scale=activity, breadth_scale=breadth, mix=mix)
            summary = generate_data(retailers, years, seed, out, drift_fraction=drift_fraction,
                                    drift_month=drift_month, end_year=end_year, world=world,
                                    progress=bar_progress(bar))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        except OSError as exc:
            raise typer.BadParameter(f"out: cannot write there ({exc})") from exc
    console.print(
        f"wrote {summary.rows:,} rows for {summary.retailers:,} retailers ({summary.first_month} to "
        f"{summary.last_month}, {summary.drifted:,} drifted) in {summary.seconds:.1f} s\n"
        f"  {summary.sales_path}\n  {summary.truth_path}")
