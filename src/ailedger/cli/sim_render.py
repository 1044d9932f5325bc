"""The table of `ailedger sim economy`: one row per actor class, amounts in units."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ailedger.core.amounts import format_units
from ailedger.sim.books import ClassRow

VERDICT = {"honest": "must net > 0", "dishonest": "must net <= 0", "buyer": "pays for a service",
           "concentrated": "held to the cap"}


def render_table(out: Console, rows: list[ClassRow], figures: dict[str, Any]) -> None:
    state = "interrupted after" if figures["interrupted"] else "after"
    table = Table(title=f"adversarial economy, seed {figures['seed']}, {state} {figures['blocks']} blocks "
                        f"({figures['seconds']:.1f} s)")
    for name, justify in (("class", "left"), ("actors", "right"), ("earned", "right"), ("slashed", "right"),
                          ("fees", "right"), ("net", "right"), ("", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        ok = (r.side == "honest" and r.net > 0) or (r.side == "dishonest" and r.net <= 0)
        colour = "green" if ok else "red" if r.side in ("honest", "dishonest") else "default"
        table.add_row(r.role, str(r.actors), format_units(r.earned), format_units(r.slashed), format_units(r.fees),
                      f"[{colour}]{format_units(r.net)}[/]", VERDICT[r.side])
    out.print(table)
    share = figures["max_operator_share"]
    out.print(f"top operator share at most {share:.2%} of leased h100 (cap {figures['cap']:.0%}; the 60% owner's "
              f"identities summed: {figures['dominant_true_share_max']:.2%}); faking agents all suspended by block "
              f"{figures['faker_suspended_block']}; supply conserved: {figures['supply_conserved']}; "
              f"plots: {', '.join(figures['plots'])}")
