"""`ailedger bench NAME`: run `bench/NAME.py` from the repository and print its figures as JSON.

The benchmarks live at the repository root (beside `src/`), not in the package, so they are found
relative to this checkout. The JSON document is the very last line of stdout, so scripts can take
it with `tail -n 1` whatever tables the benchmark printed before.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

import ailedger
from ailedger.cli.output import echo_last_line
from ailedger.core import errors
from ailedger.core.errors import LedgerError


def bench_dir() -> Path:
    return Path(ailedger.__file__).resolve().parents[2] / "bench"


def available() -> list[str]:
    d = bench_dir()
    return sorted(p.stem for p in d.glob("*.py") if not p.stem.startswith("_")) if d.is_dir() else []


def bench(name: Annotated[str, typer.Argument(help="Benchmark module in bench/, e.g. 'ledger'.")],
          quick: Annotated[bool, typer.Option("--quick", help="A short run (seconds), for smoke tests.")] = False
          ) -> None:
    """Run a benchmark from the repository's bench/ directory."""
    names = available()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name not in names:
        listed = ", ".join(names) if names else f"none found in {bench_dir()}"
        raise LedgerError(errors.UNKNOWN_BENCH, f"{name!r}; available: {listed}")
    root = str(bench_dir().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module(f"bench.{name}")
    run = getattr(module, "run", None)
    if not callable(run):
        raise LedgerError(errors.UNKNOWN_BENCH, f"bench/{name}.py has no run(quick) function")
    result = run(quick)
    echo_last_line(json.dumps(result))
