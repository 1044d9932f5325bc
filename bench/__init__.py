"""Benchmarks that measure the real code paths of ailedger; each module exposes `run(quick) -> dict`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def print_measures(title: str, rows: list[tuple[str, str, str]]) -> None:
    """The readable table of a benchmark: one row per measure, its value, and what it covers."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("what it covers")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def main(run: Callable[[bool], dict[str, Any]], argv: list[str]) -> int:
    """`python -m bench.NAME [--quick]`: the table, then the figures as the last line of stdout."""
    print(json.dumps(run("--quick" in argv)))
    return 0
