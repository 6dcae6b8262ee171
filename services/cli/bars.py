"""Rich progress bars fed by the one :data:`shared.progress.Progress` callback."""

from __future__ import annotations

from rich.progress import Progress as Bars
from rich.progress import TaskID

from shared.progress import Progress


def bar_progress(bars: Bars, total: int | None = None) -> Progress:
    """A callback drawing one bar per stage on ``bars`` (the stage is the task's description); ``total`` stands in
    for a total the job does not know (0)."""
    tasks: dict[str, TaskID] = {}

    def report(stage: str, done: int, stage_total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=stage_total or total)
        bars.update(tasks[stage], completed=done, total=stage_total or total)

    return report
