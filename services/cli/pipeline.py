"""`stableseg pipeline run`: the seed's batch pipelines in one command."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.cli.bars import bar_progress
from shared.config import get_settings
from shared.logging import configure_logging

app = typer.Typer(help="Batch pipeline (the seed's four scripts in one).", no_args_is_help=True)
console = Console(stderr=True)


def comparison_table(summary: dict) -> Table:
    """The seed's raw-vs-latent comparison: clusters, noise, largest share, ARI."""
    title = f"{summary['feature_set']}: {summary['eligible']} eligible shops, {summary['features']} features"
    table = Table(title=title)
    table.add_column("space")
    for name in ("clusters", "noise", "largest share", "ARI"):
        table.add_column(name, justify="right")
    served = summary["served"]
    rows = [(space, summary[space]) for space in ("raw", "latent") if space in summary]
    rows.append((f"served ({served['space']}, min_cluster_size {served['min_cluster_size']})", served))
    for label, s in rows:
        ari = f"{s['ari']:.3f}" if "ari" in s else "-"
        table.add_row(label, str(s["clusters"]), f"{s['noise_ratio']:.1%}", f"{s['largest_share']:.1%}", ari)
    return table


def profile_line(profile: dict) -> str:
    """The data profile in one line."""
    if not profile.get("retailers"):
        return "data: no retailers"
    months, share = profile["months_of_history"], profile["active_month_share"]
    dropped = profile["dropped"]
    return (f"data: {profile['retailers']} retailers, {profile['eligible']} eligible (dropped: "
            f"{dropped['short_history']} short history, {dropped['low_activity']} low activity); months of history "
            f"p50 {months['p50']:g}, active-month share p10/p50 {share['p10']:.2f}/{share['p50']:.2f}, products per "
            f"active month p50 {profile['products_per_active_month']['p50']:g}")


@app.command("run")
def run(
    input_csv: Path = typer.Option(..., "--input", exists=True, dir_okay=False, help="sales CSV (Kaggle schema)"),
    artifacts: Path = typer.Option(..., "--artifacts", file_okay=False, help="output folder"),
    truth: Path | None = typer.Option(None, "--truth", exists=True, dir_okay=False, help="truth.csv for ARI"),
    feature_set: str | None = typer.Option(None, "--feature-set", help="feature set (default: configured)"),
    profile: str | None = typer.Option(
        None, "--profile", help="auto (derived from the data, model chosen by evidence) or seed (the case study's "
        "fixed settings); default: STABLESEG_PROFILE"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
) -> None:
    """Features, autoencoder, model selection (latent vs raw, densities), inference and insights into --artifacts.

    Exit code 4 (one line on stderr) when the data cannot support segments."""
    # Heavy imports (pandas, scikit-learn, TensorFlow) only when the command runs: `stableseg --help` stays fast.
    from shared.data.csv_io import SalesCSVError
    from shared.features import EligibilityRule, get_feature_set
    from shared.model.gates import Gates
    from shared.model.params import ModelParams
    from shared.model.refusal import InsufficientDataError
    from shared.pipeline import run_pipeline

    settings = get_settings()
    configure_logging("json" if as_json else settings.log_format, "WARNING" if as_json else settings.log_level)
    name = feature_set or settings.feature_set
    try:
        get_feature_set(name)
    except (KeyError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--feature-set") from exc
    if profile not in (None, "auto", "seed"):
        raise typer.BadParameter(f"must be 'auto' or 'seed', got {profile!r}", param_hint="--profile")
    profiled = settings.model_copy(update={"profile": profile or settings.profile})
    params, rule = ModelParams.from_settings(profiled), EligibilityRule.from_settings(profiled)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=as_json) as bar:
        try:
            gates = Gates.from_settings(settings)
            result = run_pipeline(input_csv, artifacts, name, params, rule, truth, bar_progress(bar), gates,
                                  partition_bytes=settings.pipeline_partition_bytes)
        except InsufficientDataError as exc:
            bar.stop()
            typer.echo(f"cannot segment: {exc}", err=True)
            raise typer.Exit(4) from exc
        except (SalesCSVError, ValueError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(result.summary))
        console.print(f"report: {result.report}")  # stderr: stdout holds only the JSON object
        return
    Console().print(profile_line(result.summary["profile"]))
    Console().print(comparison_table(result.summary))
    Console().print(f"artifacts written to {artifacts} in {result.summary['seconds']['total']:.1f} s")
    Console().print(f"report: {result.report}")
