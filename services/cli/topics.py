"""`stableseg topics create|list`: the contract topics with their configured partition counts."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from shared.bus.security import kafka_security
from shared.bus.topics import ensure_topics, missing_topics, topic_specs
from shared.config import get_settings

app = typer.Typer(help="Kafka topics of the contract (created explicitly; never broker auto-creation).",
                  no_args_is_help=True)
console = Console()


@app.command("create")
def create(replication_factor: int = typer.Option(1, min=1, help="replication factor of new topics")) -> None:
    """Create every missing contract topic on STABLESEG_KAFKA_BOOTSTRAP (idempotent)."""
    settings = get_settings()
    specs = topic_specs(settings)
    created = ensure_topics(settings.kafka_bootstrap, specs, replication_factor=replication_factor,
                            security=kafka_security(settings, "kafka-python"))
    console.print(f"topics created on {settings.kafka_bootstrap}: {', '.join(created) or 'none (all exist)'}")


@app.command("list")
def list_topics() -> None:
    """The contract topics, their configured partitions and whether they exist on the broker."""
    settings = get_settings()
    specs = topic_specs(settings)
    missing = set(missing_topics(settings.kafka_bootstrap, specs, kafka_security(settings, "kafka-python")))
    table = Table("topic", "partitions", "exists")
    for name, partitions in specs.items():
        table.add_row(name, str(partitions), "no" if name in missing else "yes")
    console.print(table)
