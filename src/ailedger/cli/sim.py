"""`ailedger sim economy`: the adversarial economy on the real state machine (sim/economy.py).

Prints a table per actor class (earned, slashed, fees, net), writes PNG plots into --out and ends
with one JSON line of figures; after Ctrl-C the same, for the blocks run so far, then exit status 130.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from ailedger.cli.chain import parse_params
from ailedger.cli.output import echo_last_line, settings
from ailedger.cli.progress import stage_bars
from ailedger.cli.sim_render import render_table
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.sim import plots
from ailedger.sim.economy import run, summary
from ailedger.sim.world import EconomyConfig

app = typer.Typer(no_args_is_help=True, help="Simulations that drive the real state machine.")


def writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise LedgerError(errors.SIM_OUT_UNWRITABLE, f"{out}: {exc}") from exc


@app.command("economy")
def economy(ctx: typer.Context,
            seed: Annotated[int, typer.Option("--seed", min=0, help="Seeds every actor, key and record.")] = 1,
            blocks: Annotated[int, typer.Option("--blocks", min=1, help="Blocks to run after the setup block.")]
            = 1_000,
            out: Annotated[Path, typer.Option("--out", file_okay=False, help="Directory for the PNG plots.")]
            = Path("sim-out"),
            colluders_majority: Annotated[bool, typer.Option(
                "--colluders-majority", help="Give the colluding validators the stake majority.")] = False,
            undeclared_sybils: Annotated[bool, typer.Option(
                "--undeclared-sybils", help="The 60% operator's identities each claim to be their own operator.")]
            = False,
            param: Annotated[list[str] | None, typer.Option(
                "--param", help="NAME=VALUE ledger parameter at genesis (repeatable), over the run's own.")]
            = None) -> None:
    """Honest actors against spammers, copiers, leakers, stuffers, colluders, a 60% operator, a lease skipper
    and faking agents; who ends up with what."""
    s = settings(ctx)
    writable(out)  # before the run, not after minutes of it
    base = EconomyConfig(seed=seed)
    config = dataclasses.replace(base, colluders_majority=colluders_majority, sybils_declared=not undeclared_sybils,
                                 genesis_params={**base.genesis_params, **parse_params(param or [])})
    with stage_bars(s) as tick:
        result = run(config, blocks, tick)
    figures = summary(result)
    w = result.world
    sides = {a.role: a.side for a in w.cast}
    try:
        figures["plots"] = [
            str(plots.earnings(w.books, sides, out / "earnings.png")),
            str(plots.concentration(w.books.heights, w.board.top_share_bps, w.board.true_top_bps, w.board.hhi,
                                    int(figures["cap"] * 10_000), out / "concentration.png")),
        ]
    except OSError as exc:
        raise LedgerError(errors.SIM_OUT_UNWRITABLE, f"{out}: {exc}") from exc
    if not s.json:
        render_table(s.out, result.rows(), figures)
    echo_last_line(json.dumps(figures))
    if result.interrupted:
        raise typer.Exit(130)  # the shell's code for Ctrl-C, after the partial figures
