"""Benchmarks that measure the real code paths of ailedger; each module exposes `run(quick) -> dict`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def main(run: Callable[[bool], dict[str, Any]], argv: list[str]) -> int:
    """`python -m bench.NAME [--quick]`: the table, then the figures as the last line of stdout."""
    print(json.dumps(run("--quick" in argv)))
    return 0
