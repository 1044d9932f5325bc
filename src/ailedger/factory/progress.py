"""Rich progress bars for the factory's long steps (conversion, training), as plain callbacks.

The engines take callbacks so they never print; the CLI wraps them in these bars.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ailedger.factory.basemodel import Progress as StageCallback
from ailedger.factory.train import StepCallback


@contextmanager
def training_bar(description: str = "training", console: Console | None = None) -> Iterator[StepCallback]:
    """A bar with steps done, loss of the last step and time left; yields the trainer's `on_step`."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(description, total=None, loss="-")

        def on_step(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, loss=f"{loss:.4f}")

        yield on_step


@contextmanager
def stage_bar(description: str, console: Console | None = None) -> Iterator[StageCallback]:
    """A bar for staged work such as the GGUF conversion; yields a `(stage, done, total)` callback."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task(description, total=None)

        def tick(stage: str, done: int, total: int | None) -> None:
            bar.update(task, description=f"{description}: {stage}", completed=done, total=total)

        yield tick
