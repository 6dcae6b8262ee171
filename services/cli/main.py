"""The ``stableseg`` command line: one typer app, one module per command group."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from services.cli import demo, ingest, pipeline, serve, stack, system, topics
from services.cli.db import app as db_app
from services.cli.features import app as features_app
from services.cli.generate import generate as generate_command
from services.cli.retrain import retrain as retrain_command
from services.cli.segment import segment as segment_command
from shared.config import get_settings

app = typer.Typer(help="stableseg: stable retailer segmentation for FMCG retail.", no_args_is_help=True)
console = Console()


@app.callback()
def main() -> None:
    """stableseg: stable retailer segmentation for FMCG retail."""


@app.command("config")
def show_config(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Print the effective configuration (secrets masked)."""
    values = get_settings().masked()
    if as_json:
        console.print_json(json.dumps(values, default=str))
        return
    for key, value in values.items():
        console.print(f"[bold]{key}[/bold] = {value}")


# Command groups are registered below, one line each.
app.command("serve")(serve.serve)
app.add_typer(stack.app, name="stack")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(topics.app, name="topics")
app.command("up")(system.up)
app.command("down")(system.down)
app.command("status")(system.status)
app.command("ingest")(ingest.ingest)
app.add_typer(db_app, name="db")
app.add_typer(features_app, name="features")
app.command("generate")(generate_command)
app.command("retrain")(retrain_command)
app.command("demo")(demo.demo)
app.command("segment")(segment_command)
