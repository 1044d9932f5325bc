"""How the CLI speaks: Rich tables for people, one JSON document for machines, one error format.

Why one place: every command must print failures the same way (`error[<code>]: <sentence>
(<detail>)` on stderr, exit 1, or 2 for a malformed argument) and must honour `--json` the same
way, so scripts can rely on both.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ailedger.core import errors
from ailedger.core.amounts import format_units
from ailedger.core.errors import LedgerError

HOME_ENV = "AILEDGER_HOME"


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".ailedger")


@dataclass
class Settings:
    """Global options, shared with every command through the Typer context."""

    home: Path = field(default_factory=default_home)
    json: bool = False

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def out(self) -> Console:
        # Built on demand so it writes to whatever sys.stdout is now (test runners swap it); piped
        # output gets wide lines so that hashes are not folded.
        return Console(highlight=False, width=None if sys.stdout.isatty() else 160)

    @property
    def err(self) -> Console:
        return Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def settings(ctx: typer.Context) -> Settings:
    found = ctx.find_object(Settings)
    return found if found is not None else Settings()


def emit(s: Settings, data: Any, render: Callable[[Console], None]) -> None:
    """Print `data` as JSON under --json, else let `render` draw it for people."""
    if s.json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        render(s.out)


def error_line(exc: LedgerError) -> str:
    return f"error[{exc.code.name}]: {exc.code.message}" + (f" ({exc.detail})" if exc.detail else "")


def exit_code(exc: LedgerError) -> int:
    return 2 if exc.code is errors.BAD_ARGUMENT else 1


class Explained(LedgerError):
    """A failure that comes with the result explaining it (a replay report, an included receipt).

    Under --json the result rides in the one error document, so stdout stays a single JSON value.
    """

    def __init__(self, code: errors.ErrorCode, detail: str, extra: dict[str, Any]) -> None:
        super().__init__(code, detail)
        self.extra = extra


def report_error(exc: LedgerError, as_json: bool) -> None:
    """The one way a failure reaches the user; never a traceback."""
    if as_json:
        extra = exc.extra if isinstance(exc, Explained) else {}
        typer.echo(json.dumps({"error": exc.to_json(), **extra}, indent=2, sort_keys=True))
    typer.echo(error_line(exc), err=True)


# -- small rendering helpers -----------------------------------------------------------------------

def units(micro: Any) -> str:
    """Micro-units as human units, e.g. 1500000 -> '1.5'."""
    return format_units(int(micro)) if isinstance(micro, int) else str(micro)


def kv_table(title: str, rows: Iterable[tuple[str, Any]]) -> Table:
    """Two columns, name and value; values print literally (no markup) unless they are Rich `Text`."""
    table = Table(title=Text(title), show_header=False, title_justify="left", box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for k, v in rows:
        table.add_row(Text(k), v if isinstance(v, Text) else Text("" if v is None else str(v)))
    return table


def short(hex_id: str, n: int = 16) -> str:
    return hex_id if len(hex_id) <= n else hex_id[:n] + "…"


def ok_mark(ok: bool) -> str:
    """A check or cross as Rich markup, for lines printed with `Console.print`."""
    return "[green]✓[/green]" if ok else "[red]✗[/red]"


def marked(ok: bool, text: str) -> Text:
    """A check or cross followed by literal `text`, for table cells."""
    return Text.assemble(("✓ ", "green") if ok else ("✗ ", "red"), text)


def echo_last_line(text: str) -> None:
    """Write a final line straight to stdout and flush, after anything Rich buffered."""
    sys.stdout.flush()
    typer.echo(text)
    sys.stdout.flush()
