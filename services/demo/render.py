"""The demo's summary as rich tables, and the exact commands to subscribe to changes and query the API."""

from __future__ import annotations

import shlex
import sys
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from services.demo.figures import change_counts
from services.demo.run import DemoReport
from shared.bus.topics import SEGMENTS_CHANGES


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1%}"


def models_table(report: DemoReport) -> Table:
    table = Table("version", "data as of", "retailers", "space", "clusters", "noise", "largest share",
                  title="model versions (raw features vs autoencoder latent space)")
    for event in report.published:
        metrics = event.get("metrics") or {}
        for space in ("latent", "raw", "served"):
            figures = metrics.get(space) or {}
            label = f"served ({figures.get('space')})" if space == "served" else space
            table.add_row(str(event["version"]), str(event.get("data_as_of")), f"{metrics.get('n') or 0:,}", label,
                          str(figures.get("clusters", "-")), _pct(figures.get("noise_ratio")),
                          _pct(figures.get("largest_share")))
    return table


def segments_table(report: DemoReport) -> Table:
    answer = report.segments
    table = Table("segment", "name", "size", "status", "first version", "last version",
                  title=f"segments (serving model version {answer.get('model_version')})")
    for segment in answer.get("segments", []):
        table.add_row(segment["segment_id"], segment["name"], f"{segment['size']:,}", segment["status"],
                      str(segment["first_version"]), str(segment["last_version"]))
    return table


def lineage_table(report: DemoReport) -> Table:
    latest = report.published[-1]["version"] if report.published else None
    entry = next((e for e in reversed(report.lineage) if e.get("model_version") == latest), {})
    table = Table("relation", "segments", title=f"lineage: version {entry.get('previous_version')} -> {latest}")
    for item in entry.get("continued", []):
        table.add_row("continued", f"{item['segment']} (cluster {item['cluster']}, Jaccard {item['jaccard']:.2f})")
    for name in ("born", "retired"):
        if entry.get(name):
            table.add_row(name, ", ".join(entry[name]))
    for item in entry.get("split", []):
        table.add_row("split", f"{item['from']} -> {', '.join(item['into'])}")
    for item in entry.get("merged", []):
        table.add_row("merged", f"{', '.join(item['from'])} -> {item['into']}")
    return table


def changes_table(report: DemoReport) -> Table:
    table = Table("model version", "reason", "events",
                  title=f"{SEGMENTS_CHANGES}: {len(report.changes):,} events ({report.changes_first:,} until the "
                        f"first model settled, {len(report.changes) - report.changes_first:,} after)")
    counts: Counter = change_counts(e.data for e in report.changes)
    for (version, reason), count in sorted(counts.items(), key=lambda item: (str(item[0][0]), item[0][1])):
        table.add_row(str(version), reason, f"{count:,}")
    return table


def stability_table(report: DemoReport) -> Table:
    s = report.stability
    table = Table("figure", "value", title="stability against the planted truth (truth.csv)")
    if s is None:
        return table
    shares = s.shares()
    table.add_row("retailers whose archetype did not change, in a segment under the first model",
                  f"{s.unchanged_assigned:,}")
    table.add_row("  ... kept their segment id after the retrain", f"{s.kept:,} ({_pct(shares['kept_share'])})")
    table.add_row("  ... moved to another segment / to noise", f"{s.moved:,} / {s.to_noise:,}")
    table.add_row("unchanged retailers with a change event after the first model",
                  f"{s.unchanged_with_events:,} of {s.unchanged:,} ({_pct(shares['unchanged_event_share'])})")
    table.add_row("drifted retailers (archetype changed) with a change event",
                  f"{s.drifted_with_events:,} of {s.drifted:,} ({_pct(shares['drifted_event_share'])})")
    table.add_row("drifted retailers whose segment differs at the end", f"{s.drifted_moved:,} of {s.drifted:,}")
    table.add_row("coverage: eligible retailers in a segment at the end",
                  f"{s.assigned_end:,} of {s.eligible_end:,} ({_pct(shares['coverage'])})")
    table.add_row("flap rate: left a segment and came back without a retrain",
                  f"{s.flapped:,} of {s.eligible_end:,} ({_pct(shares['flap_rate'])})")
    return table


def subscribe_commands(report: DemoReport) -> list[str]:
    """How a user follows ``segments.changes``: the Kafka console consumer, and a Python one-liner."""
    bootstrap = report.settings.kafka_bootstrap
    return [
        f"kafka-console-consumer.sh --bootstrap-server {bootstrap} --topic {SEGMENTS_CHANGES} --from-beginning "
        "--property print.key=true",
        f"{shlex.quote(sys.executable)} -u -c \"from kafka import KafkaConsumer; [print(m.key.decode(), "
        f"m.value.decode()) for m in KafkaConsumer('{SEGMENTS_CHANGES}', bootstrap_servers='{bootstrap}', "
        "auto_offset_reset='earliest')]\"",
    ]


def query_commands(report: DemoReport) -> list[str]:
    """curl commands against the assigner on its real port, for a retailer of this run."""
    base = f"http://127.0.0.1:{report.settings.assigner_port}"
    labels = report.labels[-1] if report.labels else {}
    shop = next((s for s, a in sorted(labels.items()) if a.get("status") == "assigned"), "S000001")
    return [
        f"curl -s {base}/v1/retailers/{shop}/segment",
        f"curl -s {base}/v1/retailers/{shop}/history",
        f"curl -s {base}/v1/segments",
        f"curl -s {base}/v1/models/current",
        f"curl -s -X POST -H \"Authorization: Bearer $STABLESEG_ADMIN_TOKEN\" {base}/v1/retrain",
    ]


def render(report: DemoReport, console: Console) -> None:
    for table in (models_table(report), segments_table(report), lineage_table(report), changes_table(report),
                  stability_table(report)):
        console.print(table)
    console.print("[dim]Both trainings were requested explicitly on training.requests; the demo's services run "
                  "with STABLESEG_RETRAIN_ON_MONTH_CLOSE=false so no other version appears; model settings are the "
                  "defaults (schedule and density derived from the data, model chosen by evidence).[/dim]")
    console.print(f"\n[bold]Subscribe to {SEGMENTS_CHANGES}:[/bold]")
    for command in subscribe_commands(report):
        console.print(f"  {command}", soft_wrap=True, highlight=False, markup=False)
    console.print("\n[bold]Query the API:[/bold]")
    for command in query_commands(report):
        console.print(f"  {command}", soft_wrap=True, highlight=False, markup=False)
    if report.kept_running:
        where = f"STABLESEG_DATA_DIR={shlex.quote(str(report.settings.data_dir))}"
        console.print(f"\nEverything keeps running: `{where} stableseg status` shows it, `{where} stableseg down` "
                      "stops it.", markup=False, highlight=False)
    else:
        console.print("\nThe services and the stack were stopped; run `stableseg demo --keep-running` to try the "
                      "commands above.")
