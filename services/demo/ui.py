"""Progress output of a demo run: one line per finished step (with its time), a live status while waiting, bars
while generating and streaming."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bars

from shared.progress import Progress


class DemoUi:
    """``with ui.step("title") as update: ... update("detail")``; ``ui.bar(title, total)``; ``ui.timings``."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.timings: dict[str, float] = {}

    @contextmanager
    def step(self, title: str) -> Iterator[Callable[[str], None]]:
        started = time.perf_counter()
        with self.console.status(f"{title} ...") as status:
            yield lambda detail: status.update(f"{title} ... {detail}")
        seconds = time.perf_counter() - started
        self.timings[title] = round(seconds, 1)
        self.console.print(f"[green]done[/green] {title} [dim]({seconds:.1f} s)[/dim]")

    @contextmanager
    def bar(self, title: str, total: int, unit: str, show_stage: bool = True) -> Iterator[Progress]:
        """A progress bar fed by the yielded callback (the stage, when shown, is the text after the bar)."""
        started = time.perf_counter()
        columns = (TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                   TextColumn("{task.fields[note]}"), TimeElapsedColumn())
        with Bars(*columns, console=self.console, transient=True) as bars:
            task = bars.add_task(title, total=total, note="")
            yield lambda stage, done, _: bars.update(task, completed=done, note=stage if show_stage else "")
        seconds = time.perf_counter() - started
        self.timings[title] = round(seconds, 1)
        self.console.print(f"[green]done[/green] {title}: {total:,} {unit} [dim]({seconds:.1f} s)[/dim]")
