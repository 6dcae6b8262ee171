"""`stableseg stack up|down|status`: the embedded broker, Redis and SQLite directory."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from shared.config import get_settings
from shared.stack import Stack, StackError

app = typer.Typer(help="The embedded infrastructure: a Kafka-protocol broker, a Redis server, the SQLite file.")
console = Console()
err_console = Console(stderr=True)


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(code=1)


@app.command("up")
def up() -> None:
    """Start the broker and Redis (if not running), wait until healthy, create the contract topics."""
    stack = Stack(get_settings())
    try:
        with console.status("starting the embedded stack (broker, redis, topics)..."):
            report = stack.up()
    except StackError as exc:
        raise _fail(exc) from exc
    for status in report.statuses:
        state = "started" if report.started[status.name] else "already running"
        console.print(f"[green]{status.name}[/green] {state}: 127.0.0.1:{status.port} (pid {status.pid})")
    created = ", ".join(report.topics_created) or "none (all exist)"
    console.print(f"topics created: {created}")
    console.print(f"database: {report.database_url}")
    console.print(
        f"use: STABLESEG_KAFKA_BOOTSTRAP={report.kafka_bootstrap} STABLESEG_REDIS_URL={report.redis_url}",
        soft_wrap=True,
    )


@app.command("down")
def down(timeout: float = typer.Option(10.0, help="seconds to wait after SIGTERM before SIGKILL")) -> None:
    """Stop the broker and Redis started by `stack up` (pid files under the data directory)."""
    stack = Stack(get_settings())
    try:
        stopped = stack.down(timeout)
    except (StackError, OSError) as exc:
        raise _fail(exc) from exc
    for name, was_running in stopped.items():
        console.print(f"{name}: {'stopped' if was_running else 'not running'}")


@app.command("status")
def status() -> None:
    """Show what runs where: pid, port, health, log file."""
    stack = Stack(get_settings())
    table = Table(title=f"stableseg stack ({stack.data_dir})")
    for column in ("component", "pid", "port", "running", "healthy"):
        table.add_column(column, no_wrap=True)
    table.add_column("log / url", overflow="fold")
    for s in stack.status():
        mark = {True: "[green]yes[/green]", False: "[red]no[/red]"}
        table.add_row(s.name, str(s.pid or "-"), str(s.port), mark[s.running], mark[s.healthy], str(s.log_file))
    db = stack.database_url
    table.add_row("database", "-", "-", "-", "-", db)
    console.print(table)


if __name__ == "__main__":  # `python -m services.cli.stack up`: without importing the other command groups
    app()
