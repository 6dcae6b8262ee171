"""`stableseg up|down|status`: the embedded stack plus the four services as background processes."""

from __future__ import annotations

import os

import httpx
import typer
from rich.console import Console
from rich.table import Table

from shared.config import Settings, get_settings
from shared.stack import Stack, StackError
from shared.stack.services import service_processes

console = Console()


def _child_environment(settings: Settings, stack: Stack) -> None:
    """Children inherit the environment: pin absolute paths and the embedded endpoints."""
    os.environ["STABLESEG_DATA_DIR"] = str(stack.data_dir)
    os.environ.setdefault("STABLESEG_KAFKA_BOOTSTRAP", stack.broker.bootstrap)
    os.environ.setdefault("STABLESEG_REDIS_URL", stack.redis.url)


def start_all(settings: Settings) -> Stack:
    """Start stack and services (idempotent); raise StackError naming what failed."""
    stack = Stack(settings)
    stack.up()
    _child_environment(settings, stack)
    for service in service_processes(settings):
        started = service.start()
        state = "started" if started else "already running"
        console.print(f"[green]{service.name}[/green] {state}: http://127.0.0.1:{service.port} (pid {service.pid}, "
                      f"log {service.log_file})")
    return stack


def up() -> None:
    """Start the embedded broker and Redis, then ingest, features, trainer and assigner in the background."""
    settings = get_settings()
    try:
        with console.status("starting the embedded stack and the services..."):
            start_all(settings)
    except StackError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print("all services healthy; `stableseg status` shows them, `stableseg down` stops everything")


def down() -> None:
    """Stop the four services, then the embedded stack (only processes stableseg started)."""
    settings = get_settings()
    for service in reversed(service_processes(settings)):
        if service.stop(timeout=20.0):
            console.print(f"stopped {service.name}")
    for name, stopped in Stack(settings).down().items():
        if stopped:
            console.print(f"stopped {name}")


def _consumer_lag(port: int) -> str:
    """The features worker's lag (records behind the high watermark) from its Prometheus metrics."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2.0).text
    except httpx.HTTPError:
        return "?"
    for line in text.splitlines():
        if line.startswith("stableseg_features_consumer_lag"):
            return str(int(float(line.rsplit(" ", 1)[1])))
    return "?"


def _current_model(port: int) -> str:
    """The model version the assigner serves (``GET /v1/models/current``)."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/v1/models/current", timeout=2.0)
    except httpx.HTTPError:
        return "?"
    if response.status_code != 200:
        return "none yet" if response.status_code in (404, 503) else "?"
    return str(response.json().get("version", "?"))


def status() -> None:
    """Health and readiness of each service and of the embedded stack, consumer lag and current model version."""
    settings = get_settings()
    table = Table("component", "pid", "port", "healthy", "ready / detail", "lag / model")
    for component in Stack(settings).status():
        table.add_row(component.name, str(component.pid or "-"), str(component.port),
                      "yes" if component.healthy else "no", "", "")
    for service in service_processes(settings):
        healthy = service.is_healthy()
        ready, detail = service.ready() if healthy else (False, "")
        extra = ""
        if healthy and service.name == "features":
            extra = f"consumer lag {_consumer_lag(service.port)}"
        elif healthy and service.name == "assigner":
            extra = f"model {_current_model(service.port)}"
        table.add_row(service.name, str(service.pid or "-"), str(service.port), "yes" if healthy else "no",
                      ("yes " if ready else "no ") + detail[:60], extra)
    console.print(table)
