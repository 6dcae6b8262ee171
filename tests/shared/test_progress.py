"""The one ``Progress`` callback: ``shared.progress`` and the CLI's bars fed by it."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress as Bars

from services.cli.bars import bar_progress
from shared.progress import or_silent


def test_or_silent() -> None:
    calls: list[tuple[str, int, int]] = []

    def report(*call: object) -> None:
        calls.append(call)  # type: ignore[arg-type]

    assert or_silent(report) is report
    or_silent(None)("stage", 1, 2)  # ignored, no error
    assert calls == []


def test_bar_progress_one_bar_per_stage_with_the_job_or_the_given_total() -> None:
    bars = Bars(console=Console(file=io.StringIO()), disable=True)
    report = bar_progress(bars, total=50)
    report("scaling", 0, 1)
    report("scaling", 1, 1)
    report("sales.csv", 20, 0)  # a job that does not know its total
    tasks = {task.description: task for task in bars.tasks}
    assert sorted(tasks) == ["sales.csv", "scaling"]
    assert (tasks["scaling"].completed, tasks["scaling"].total) == (1, 1)
    assert (tasks["sales.csv"].completed, tasks["sales.csv"].total) == (20, 50)
