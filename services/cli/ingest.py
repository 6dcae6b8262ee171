"""``stableseg ingest CSV``: bulk-load a Kaggle-schema sales CSV into ``sales.monthly``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from aiokafka.errors import KafkaError as AIOKafkaError
from kafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from tenacity import stop_after_delay

from services.cli.bars import bar_progress
from services.ingest.bulk import DEFAULT_CHUNKSIZE, BulkLoadError, LoadSummary, count_data_lines, load_csv
from shared.bus import ensure_topics, topic_specs
from shared.bus.security import kafka_security
from shared.config import get_settings
from shared.data.csv_io import SalesCSVError
from shared.logging import configure_logging

console = Console(stderr=True)
EXIT_BROKER, EXIT_BAD_FILE = 1, 2


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} rows/s" if task.speed else "- rows/s", style="progress.data.speed")


def ingest(
    csv: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="sales CSV (Kaggle schema)"),
    bootstrap: str | None = typer.Option(None, help="Kafka bootstrap servers (default: $STABLESEG_KAFKA_BOOTSTRAP)"),
    rejects_out: Path | None = typer.Option(
        None, "--rejects-out", help="write every rejected row to this CSV (line, field, message, the fields)"
    ),
    chunksize: int = typer.Option(DEFAULT_CHUNKSIZE, min=1, help="rows read and validated at a time"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object on stdout"),
    broker_wait: float = typer.Option(30.0, min=0, help="seconds to wait for the broker to come up"),
) -> None:
    """Bulk-load a sales CSV into sales.monthly (rejected rows go to sales.rejected), with a progress bar and a
    summary. Exit status 1 when the broker fails, 2 when the file is unreadable. Re-running a load is safe:
    records replace earlier ones with the same (shop_id, product_id, year, month)."""
    settings = get_settings()
    configure_logging(settings.log_format, "WARNING")
    bootstrap = bootstrap or settings.kafka_bootstrap
    try:
        ensure_topics.retry_with(stop=stop_after_delay(broker_wait))(
            bootstrap, topic_specs(settings), security=kafka_security(settings, "kafka-python")
        )
    except KafkaError as exc:
        console.print(f"[red]error:[/red] cannot reach the Kafka broker at {bootstrap}: {exc!r}")
        raise typer.Exit(EXIT_BROKER) from None
    total = count_data_lines(csv)
    progress = Progress(
        TextColumn("[bold]ingest {task.description}"), BarColumn(), MofNCompleteColumn(), RowsPerSecond(),
        TimeElapsedColumn(), console=console, transient=as_json,
    )
    try:
        with progress:
            summary = load_csv(
                csv, bootstrap, chunksize=chunksize, rejects_out=rejects_out,
                progress=bar_progress(progress, total), security=kafka_security(settings, "aiokafka"),
            )
    except SalesCSVError as exc:
        console.print(f"[red]error:[/red] {csv}: {exc}")
        raise typer.Exit(EXIT_BAD_FILE) from None
    except (BulkLoadError, KafkaError, AIOKafkaError) as exc:
        console.print(f"[red]error:[/red] broker at {bootstrap} failed: {exc!r}")
        raise typer.Exit(EXIT_BROKER) from None
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        _print_summary(summary, rejects_out)


def _print_summary(summary: LoadSummary, rejects_out: Path | None) -> None:
    table = Table(title="ingest summary", show_header=False)
    for name, value in (
        ("rows read", f"{summary.rows_read:,}"),
        ("produced", f"{summary.produced:,}"),
        ("rejected", f"{summary.rejected:,}"),
        ("seconds", f"{summary.seconds:.2f}"),
        ("rows/s", f"{summary.rows_per_second:,.0f}"),
    ):
        table.add_row(name, value)
    console.print(table)
    if not summary.rejected:
        return
    console.print(f"[yellow]{summary.rejected:,} rejected rows[/yellow] (sent to sales.rejected), first ones:")
    for entry in summary.examples:
        problems = "; ".join(f"{e['field']}: {e['message']}" for e in entry["errors"])
        console.print(f"  line {entry['line']}: {problems}")
    where = f"full list in {rejects_out}" if rejects_out else "use --rejects-out FILE for the full list"
    console.print(f"  ({where})")
