"""One demo run: up, generate with drift, stream the months before the drift through the ingest API, train,
stream the rest, retrain, collect what changed. ``run_demo(options)`` returns a :class:`DemoReport`."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from services.cli.system import start_all
from services.demo.bus import TopicEvent, end_offsets, read_topic, request_training
from services.demo.figures import Stability, stability
from services.demo.observe import AssignerClient
from services.demo.options import MARKER, DemoError, DemoOptions, demo_environment, patched_environ
from services.demo.stream import IngestClient, StreamSummary, read_months, split_at
from services.demo.ui import DemoUi
from services.demo.waits import AssignerProbe, FeaturesProbe, LabelWatch, TrainingWatch, poll_until
from shared.bus.topics import SEGMENTS_CHANGES, SEGMENTS_LINEAGE
from shared.config import Settings
from shared.data.generator import GenerationSummary, generate
from shared.stack import Stack, StackError
from shared.stack.services import service_processes


@dataclass
class DemoReport:
    """Everything the demo measured (rendered by :mod:`services.demo.render`)."""

    options: DemoOptions
    settings: Settings
    generation: GenerationSummary | None = None
    streamed: list[StreamSummary] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)  # models.published events, in order
    models: dict[str, Any] = field(default_factory=dict)  # GET /v1/models
    segments: dict[str, Any] = field(default_factory=dict)  # GET /v1/segments
    lineage: list[dict[str, Any]] = field(default_factory=list)  # segments.lineage events
    changes: list[TopicEvent] = field(default_factory=list)  # every segments.changes event
    changes_first: int = 0  # ... of which published until the first model had settled
    mark: dict[int, int] = field(default_factory=dict)  # segments.changes end offsets once the first model settled
    labels: list[dict[str, dict[str, Any]]] = field(default_factory=list)  # API answers after each model
    stability: Stability | None = None
    timings: dict[str, float] = field(default_factory=dict)
    kept_running: bool = False

    def changes_after(self) -> list[TopicEvent]:
        """The ``segments.changes`` events published after the first model had settled."""
        return [e for e in self.changes if e.offset >= self.mark.get(e.partition, 0)]


def stop_all(settings: Settings) -> None:
    """Stop the services, then the embedded stack (what ``stableseg down`` does) for these settings."""
    for service in reversed(service_processes(settings)):
        service.stop(timeout=20.0)
    Stack(settings).down()


def _fresh_data_dir(settings: Settings) -> Path:
    """Empty the demo's data dir (stopping what an earlier run left running there); refuse a foreign folder."""
    data_dir = Path(settings.data_dir)
    if data_dir.exists():
        if any(data_dir.iterdir()) and not (data_dir / MARKER).exists():
            raise DemoError(f"data_dir: {data_dir} exists and was not made by the demo; pass --data-dir with a "
                            "new or demo folder")
        stop_all(settings)
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).write_text("made by `stableseg demo`; the next demo run deletes this folder\n")
    return data_dir


def run_demo(options: DemoOptions, console: Console | None = None) -> DemoReport:
    """Run the whole flow; raise DemoError (naming the failing service) when a step fails or times out. Stops
    everything at the end unless ``options.keep_running`` (then the caller stops it with ``stop_all``)."""
    options = options.validate()
    with patched_environ(demo_environment(Settings(), options)):
        settings = Settings()
        report = DemoReport(options, settings, kept_running=options.keep_running)
        ui = DemoUi(console or Console())
        data_dir = _fresh_data_dir(settings)
        try:
            _flow(report, ui, data_dir)
        finally:
            report.timings = ui.timings
            if not options.keep_running:
                with ui.step("stopping the services and the stack"):
                    stop_all(settings)
    return report


def _flow(report: DemoReport, ui: DemoUi, data_dir: Path) -> None:
    options, settings = report.options, report.settings
    timeout = options.step_timeout
    with ui.step("starting the embedded broker, Redis and the four services"):
        try:
            start_all(settings)
        except StackError as exc:
            raise DemoError(str(exc)) from None
    drift_month = options.effective_drift_month
    with ui.bar("generating", options.retailers, "retailers", show_stage=False) as progress:
        report.generation = generate(options.retailers, options.years, options.seed, data_dir / "data",
                                     drift_fraction=options.drift_fraction, drift_month=drift_month,
                                     end_year=options.end_year, progress=progress)
    before, after = split_at(read_months(report.generation.sales_path), drift_month)
    features = FeaturesProbe(settings)
    assigner = AssignerClient(settings.assigner_port)
    token = settings.ingest_token.get_secret_value() if settings.ingest_token else None
    ingest = IngestClient(f"http://127.0.0.1:{settings.ingest_port}",
                          min(options.batch_records, settings.ingest_max_records), token=token)
    try:
        for phase, months in enumerate((before, after), start=1):
            _stream(report, ui, ingest, months, f"streaming {months[0].period}..{months[-1].period}")
            with ui.step("waiting for the feature store to catch up") as update:
                poll_until(features, "feature store catch-up", timeout, settings, "features", update)
            if phase == 2:
                with ui.step("waiting for the assigner's online assignments") as update:
                    probe = AssignerProbe(settings, assigner, report.published[-1]["version"])
                    poll_until(probe, "assigner catch-up", timeout, settings, "assigner", update)
            reason = "demo: first model" if phase == 1 else f"demo: retrain after the drift of {drift_month}"
            _train(report, ui, reason, timeout)
            version = report.published[-1]["version"]
            with ui.step(f"waiting for the assigner to relabel everyone with version {version}") as update:
                poll_until(AssignerProbe(settings, assigner, version), "assigner relabel", timeout, settings,
                           "assigner", update)
                watch = LabelWatch(assigner, settings.redis_url, features.eligible(settings.feature_set))
                try:
                    poll_until(watch, "labels of every eligible retailer", timeout, settings, "assigner", update)
                finally:
                    watch.close()
                report.labels.append(watch.answers)
            if phase == 1:
                report.mark = end_offsets(settings.kafka_bootstrap, SEGMENTS_CHANGES)
    finally:
        features.close()
        ingest.close()
    with ui.step("collecting models, segments, lineage and change events"):
        _collect(report, assigner, data_dir)


def _stream(report: DemoReport, ui: DemoUi, ingest: IngestClient, months: list, title: str) -> None:
    total = sum(month.rows.height for month in months)
    with ui.bar(title, total, "records") as progress:
        report.streamed.append(ingest.stream(months, progress))


def _train(report: DemoReport, ui: DemoUi, reason: str, timeout: float) -> None:
    settings = report.settings
    with ui.step(f"training ({reason})") as update:
        watch = TrainingWatch(settings)
        request_training(settings.kafka_bootstrap, reason)
        poll_until(watch, "training", timeout, settings, "trainer", update, interval=1.0)
    assert watch.event is not None
    report.published.append(watch.event)


def _collect(report: DemoReport, assigner: AssignerClient, data_dir: Path) -> None:
    bootstrap = report.settings.kafka_bootstrap
    report.models = assigner.models()
    report.segments = assigner.segments()
    report.lineage = [event.data for event in read_topic(bootstrap, SEGMENTS_LINEAGE)]
    report.changes = read_topic(bootstrap, SEGMENTS_CHANGES)
    later = report.changes_after()
    report.changes_first = len(report.changes) - len(later)
    truth = pd.read_csv(data_dir / "data" / "truth.csv", dtype=str)
    ordered = sorted(report.changes, key=lambda e: (e.partition, e.offset))  # one retailer: one partition, in order
    report.stability = stability(truth, report.labels[0], report.labels[1], [e.data for e in later],
                                 [e.data for e in ordered])
