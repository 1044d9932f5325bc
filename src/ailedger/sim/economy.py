"""`ailedger sim economy`: run the adversarial economy for N blocks and say who won.

The question the run answers: on the real ledger, with its real gates, votes, slashing, billing and
settlement, does any way of cheating pay? Every class of actor (`sim.world`) plays for the whole
run; the figures are read back from the ledger (`sim.books`). Targets: every dishonest class nets
<= 0, every honest class nets > 0, and the books close exactly (supply conserved, nothing
unaccounted).

Why a stand-in for attribution: running SmolLM2-135M's attribution engine on 1,000 blocks of
answers takes hours on this machine, far outside the run's 10-minute budget; `sim.attributor`
states the seeded rule that replaces it, and settlement pays through the real code either way.

Ctrl-C is caught between blocks: the block in progress is finished, and the run stops there with
its partial figures (`interrupted: true`).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ailedger.datanet.state import STATUS_NAMES
from ailedger.settlement import views as settlement
from ailedger.sim.books import ClassRow
from ailedger.sim.world import EconomyConfig, World

Progress = Callable[[str, int, int | None], None]
BPS = 10_000


@dataclass
class Run:
    world: World
    asked: int
    done: int
    seconds: float
    interrupted: bool

    def rows(self) -> list[ClassRow]:
        return self.world.books.rows(self.world.ledger.state, self.world.ledger.fees)


@contextmanager
def _stop_on_ctrl_c() -> Iterator[list[bool]]:
    """A flag the loop reads between blocks; SIGINT sets it instead of raising mid-block."""
    flag = [False]

    def handler(signum: int, frame: Any) -> None:
        flag[0] = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: Ctrl-C cannot reach us anyway
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def run(config: EconomyConfig, blocks: int, progress: Progress | None = None) -> Run:
    """Set the world up, then step it `blocks` times (fewer after Ctrl-C)."""
    tick = progress or (lambda stage, done, total: None)
    t0 = time.perf_counter()
    world = World(config)
    world.setup()
    done = 0
    tick("blocks", 0, blocks)
    with _stop_on_ctrl_c() as stop:
        while done < blocks and not stop[0]:
            world.step()
            done += 1
            tick("blocks", done, blocks)
        interrupted = stop[0]
    return Run(world, blocks, done, time.perf_counter() - t0, interrupted)


def summary(r: Run) -> dict[str, Any]:
    """The JSON figures of a run (amounts in micro-units)."""
    w = r.world
    state = w.ledger.state
    rows = r.rows()
    judged = [x for x in rows if x.side != "buyer"]
    honest = [x.net for x in judged if x.side == "honest"]
    dishonest = [x.net for x in judged if x.side == "dishonest"]
    records: dict[str, Counter[str]] = {}
    for e in w.book.entries.values():
        records.setdefault(e.label, Counter())[STATUS_NAMES.get(e.status, str(e.status))] += 1
    unaccounted = w.books.unaccounted(state)
    conserved = bool(settlement.conservation(state)["conserved"]) and unaccounted == 0
    out: dict[str, Any] = {
        "name": "economy",
        "seed": w.config.seed,
        "blocks": r.done,
        "height": w.height,
        "interrupted": r.interrupted,
        "seconds": round(r.seconds, 2),
        "honest_net_min": min(honest) if honest else None,
        "dishonest_net_max": max(dishonest) if dishonest else None,
        **market_figures(w),
        "faker_suspended_block": faker_suspended_block(w),
        "fakers_suspended": {name: h - w.setup_height for name, h in sorted(w.tasks.suspended.items())},
        "classes": {x.role: {"side": x.side, "actors": x.actors, "earned": x.earned, "slashed": x.slashed,
                             "fees": x.fees, "net": x.net} for x in rows},
        "records": {label: dict(sorted(c.items())) for label, c in sorted(records.items())},
        "supply_conserved": conserved,
        "unaccounted": unaccounted,
        "failed_txs": dict(sorted(w.ledger.failed.items())),
        "refused_txs": len(w.ledger.refused),
        "state_root": w.ledger.state_root.hex(),
        "unit": "micro",
    }
    out["targets"] = {
        "honest_net_positive": bool(honest) and min(honest) > 0,
        "dishonest_net_at_most_zero": bool(dishonest) and max(dishonest) <= 0,
        "operator_share_within_cap": out["max_operator_share"] <= out["cap"],
        "fakers_suspended_within_200_blocks": out["faker_suspended_block"] is not None
        and out["faker_suspended_block"] <= 200,
        "supply_conserved": conserved,
    }
    out["targets_met"] = all(out["targets"].values())
    return out


def market_figures(w: World) -> dict[str, Any]:
    """Concentration as the market records it each block (top operator share, HHI) against the cap."""
    b = w.board
    return {
        "max_operator_share": max(b.top_share_bps, default=0) / BPS,
        "cap": w.param("market_max_operator_share_bps") / BPS,
        "dominant_true_share_max": max(b.true_top_bps, default=0) / BPS,
        "hhi_max": max(b.hhi, default=0),
        "hhi_final": b.hhi[-1] if b.hhi else 0,
    }


def faker_suspended_block(w: World) -> int | None:
    """Blocks after setup by which every faking agent had been suspended at least once; None if one never was."""
    fakers = [op.agent for op in w.agent_operators if op.side == "dishonest"]
    if not fakers or any(f not in w.tasks.suspended for f in fakers):
        return None
    return max(w.tasks.suspended[f] for f in fakers) - w.setup_height
