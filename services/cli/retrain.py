"""``stableseg retrain [--wait]``: ask the trainer for a new model; optionally wait for its publication."""

from __future__ import annotations

import getpass
import json
import socket
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import typer
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from rich.console import Console
from tenacity import stop_after_delay

from shared.bus import decode_event, ensure_topics, make_sync_producer, publish, topic_specs, training_request
from shared.bus.security import kafka_security
from shared.bus.topics import MODELS_PUBLISHED, TRAINING_REQUESTS
from shared.config import Settings, get_settings
from shared.logging import configure_logging

console = Console(stderr=True)
EXIT_BROKER, EXIT_TIMEOUT, EXIT_REJECTED = 1, 2, 3


def _default_requester() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _watch_published(bootstrap: str, security: dict[str, Any]) -> KafkaConsumer:
    """A group-less consumer positioned at the current end of ``models.published`` (set BEFORE requesting)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             client_id="stableseg-retrain", **security)
    ids = consumer.partitions_for_topic(MODELS_PUBLISHED) or {0}
    partitions = [TopicPartition(MODELS_PUBLISHED, p) for p in sorted(ids)]
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for tp in partitions:
        consumer.position(tp)  # resolve the end offset now, not lazily after our request was served
    return consumer


class _RegistryWatch:
    """Best effort: new rejected versions in the registry (only when the database is reachable from here)."""

    def __init__(self, settings: Settings) -> None:
        self.registry: Any = None
        self.baseline = 0
        url = sa.make_url(settings.effective_database_url)
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
            return
        try:
            from shared.storage import Registry

            self.registry = Registry(settings.effective_database_url)
            self.baseline = max((v.version for v in self.registry.versions.list_versions()), default=0)
        except Exception:
            self.registry = None

    def rejected(self) -> Any:
        if self.registry is None:
            return None
        try:
            versions = self.registry.versions.list_versions(status="rejected")
        except Exception:
            return None
        from services.trainer.publication import ABANDONED  # the trainer's modules load scikit-learn: only here

        fresh = [v for v in versions if v.version > self.baseline and v.reason != ABANDONED]
        return fresh[-1] if fresh else None


def _space(report: dict[str, Any] | None) -> str:
    if not report:
        return "-"
    return (f"{report['clusters']} clusters, noise {report['noise_ratio']:.1%}, "
            f"largest cluster {report['largest_share']:.1%}")


def retrain(
    wait: bool = typer.Option(False, "--wait", help="block until the new version is published, then print it"),
    timeout: float = typer.Option(900.0, "--timeout", min=1.0, help="seconds --wait blocks before giving up"),
    reason: str = typer.Option("manual", help="why (recorded with the model version)"),
    requested_by: str | None = typer.Option(None, "--requested-by", help="who asks (default: user@host)"),
    as_json: bool = typer.Option(False, "--json", help="with --wait: print the models.published event as JSON"),
    broker_wait: float = typer.Option(10.0, "--broker-wait", min=0, help="seconds to wait for the broker to come up"),
) -> None:
    """Request a retrain (a training.requests event). With --wait: exit 0 once a new version is published,
    2 on timeout, 3 when the trainer rejected the model (quality gate), 1 when the broker is unreachable."""
    settings = get_settings()
    configure_logging(settings.log_format, "WARNING")
    bootstrap, requester = settings.kafka_bootstrap, requested_by or _default_requester()
    try:
        security = kafka_security(settings, "kafka-python")
        ensure_topics.retry_with(stop=stop_after_delay(broker_wait))(bootstrap, topic_specs(settings),
                                                                     security=security)
        watcher = _watch_published(bootstrap, security) if wait else None
        registry = _RegistryWatch(settings) if wait else None
        producer = make_sync_producer(bootstrap, **security)
        try:
            sent = publish(producer, training_request(reason, requester, source="stableseg/cli")).get(timeout=15)
        finally:
            producer.close(timeout=5)
    except KafkaError as exc:
        console.print(f"[red]error:[/red] cannot reach the Kafka broker at {bootstrap}: {exc!r}")
        raise typer.Exit(EXIT_BROKER) from None
    console.print(f"retrain requested by {requester} (reason: {reason}; {TRAINING_REQUESTS} offset {sent.offset})")
    if watcher is None or registry is None:
        return
    try:
        event = _wait_for_version(watcher, registry, timeout)
    finally:
        watcher.close()
    if as_json:
        typer.echo(json.dumps(event, sort_keys=True))
        return
    console.print(f"[green]published version {event['version']}[/green] (feature set {event['feature_set']}, "
                  f"data as of {event['data_as_of']}, {event['metrics'].get('n')} retailers)")
    console.print(f"  latent space: {_space(event['metrics'].get('latent'))}")
    console.print(f"  raw features: {_space(event['metrics'].get('raw'))}")


def _wait_for_version(watcher: KafkaConsumer, registry: _RegistryWatch, timeout: float) -> dict[str, Any]:
    deadline, next_check = time.monotonic() + timeout, time.monotonic() + 5.0
    with console.status("waiting for the trainer to publish a new model version ..."):
        while time.monotonic() < deadline:
            for records in watcher.poll(timeout_ms=1000).values():
                for message in records:
                    data = decode_event(message.value, message.headers, message.key).data or {}
                    if isinstance(data.get("version"), int):
                        return data
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 5.0
                rejected = registry.rejected()
                if rejected is not None:
                    console.print(f"[red]error:[/red] version {rejected.version} was trained but rejected: "
                                  f"{rejected.reason}; the current model stays")
                    raise typer.Exit(EXIT_REJECTED)
    console.print(
        f"[red]error:[/red] no new model version was published within {timeout:g} s (is the trainer running? "
        "check `GET /readyz` and `GET /v1/status` on the trainer port, default 8003)"
    )
    raise typer.Exit(EXIT_TIMEOUT)
