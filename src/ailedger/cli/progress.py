"""One Rich progress display for long CLI work: a bar per stage, fed by the engines' `(stage, done, total)` callback.

Why one place: the factory, the Datanet pipeline and attribution all report progress the same way
(`Progress = Callable[[str, int, int | None], None]`), so every command draws it the same way: on
stderr, never under `--json`, a bar created the first time a stage reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ailedger.cli.output import Settings

StageCb = Callable[[str, int, int | None], None]


@contextmanager
def stage_bars(s: Settings, transient: bool = False, terminal_only: bool = False) -> Iterator[StageCb]:
    """Yield the callback; `transient` clears the bars at the end, `terminal_only` draws nothing when piped."""
    columns = (TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    hidden = s.json or (terminal_only and not s.err.is_terminal)
    with Progress(*columns, console=s.err, transient=transient, disable=hidden) as bar:
        tasks: dict[str, Any] = {}

        def tick(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield tick
