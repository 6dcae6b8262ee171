"""`stableseg demo`: the whole system end to end on the embedded stack (what `make demo` runs)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx
import typer
from kafka.errors import KafkaError
from redis import RedisError
from rich.console import Console
from rich.markup import escape

from services.demo.figures import Stability
from services.demo.options import DemoError, DemoOptions

console = Console()
err_console = Console(stderr=True)


def demo(
    retailers: int = typer.Option(2000, "--retailers", min=50, help="retailers to generate"),
    years: int = typer.Option(3, "--years", min=2, help="calendar years of history, ending with 2025"),
    seed: int = typer.Option(42, "--seed", min=0,
                             help="seed of the generated data and of both trainings (the services' STABLESEG_SEED)"),
    drift_fraction: float = typer.Option(0.05, "--drift-fraction", min=0.0, max=1.0,
                                         help="fraction of retailers whose archetype changes at the drift month"),
    drift_month: str | None = typer.Option(None, "--drift-month", help="YYYY-MM of the drift (default: July of "
                                           "the last year, so six months stream after the first model)"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="the demo's own data dir, emptied at the start "
                                         "(default: $STABLESEG_DATA_DIR/demo)"),
    keep_running: bool = typer.Option(False, "--keep-running", help="leave the stack and services running"),
    step_timeout: float = typer.Option(240.0, "--step-timeout", min=1.0, help="seconds any one step may take"),
    json_out: Path | None = typer.Option(None, "--json", help="also write the stability figures as JSON here"),
) -> None:
    """Start the embedded stack and the four services, generate retailers with drift, stream the months before
    the drift through the ingest API, train, stream the remaining months, retrain, and print both model versions,
    the segments, their lineage, the change events and the stability figures. Ports come from the usual
    STABLESEG_*_PORT settings; the services run with STABLESEG_RETRAIN_ON_MONTH_CLOSE=false so that exactly the
    two requested trainings happen. Exit status 1 when a step fails or times out (the failing service's log tail
    is printed)."""
    from services.demo.render import render
    from services.demo.run import run_demo

    options = DemoOptions(retailers=retailers, years=years, seed=seed, drift_fraction=drift_fraction,
                          drift_month=drift_month, data_dir=data_dir, keep_running=keep_running,
                          step_timeout=step_timeout)
    try:
        options.validate()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        report = run_demo(options, console)
    except DemoError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        if exc.service is not None:
            _print_log_tail(exc.service, options)
        raise typer.Exit(1) from None
    except (KafkaError, RedisError, httpx.HTTPError, OSError) as exc:  # the stack went away under the demo
        err_console.print(f"[red]error:[/red] the embedded stack failed: {escape(repr(exc))}", highlight=False)
        raise typer.Exit(1) from None
    render(report, console)
    if json_out is not None and report.stability is not None:
        json_out.write_text(json.dumps(stability_figures(report.stability), indent=2))


def stability_figures(s: Stability) -> dict[str, float | int]:
    """The stability counts and shares (kept, drifted with a change, coverage, flap rate) as one JSON object."""
    return {**dataclasses.asdict(s), **{k: round(v, 6) for k, v in s.shares().items()}}


def _print_log_tail(service: str, options: DemoOptions) -> None:
    from shared.config import Settings
    from shared.stack.services import ServiceProcess

    settings = Settings()
    settings = settings.model_copy(update={"data_dir": options.resolved_data_dir(settings)})
    tail = ServiceProcess(service, settings).log_tail(30)
    err_console.print(f"--- last lines of {settings.data_dir / 'logs' / (service + '.log')} ---", highlight=False)
    err_console.print(tail, markup=False, highlight=False)
