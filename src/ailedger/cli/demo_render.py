"""How `ailedger demo` shows an answer with its attribution, and the final table of who earned what and why."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ailedger.cli.output import ok_mark, units


def render_answer(c: Console, a: dict[str, Any]) -> None:
    """One answer: the question, the text, whether it states the fact, and who is paid for it."""
    c.print(f"[bold]Q[/bold] {escape(a['question'])}  [dim](taught by {a['owner']})[/dim]")
    c.print(f"[bold]A[/bold] {escape(a['answer'].strip())}")
    shares = ", ".join(f"{s['person']} {s['bp'] / 100:.2f}%" for s in a["shares"]) or "nobody (no record drove it)"
    top = a["shares"][0]["person"] if a["shares"] else "-"
    right = ok_mark(a["correct"]) + (" states the fact" if a["correct"] else f" does not state {a['fact']}")
    fee = f"fee {units(a['fee'])}" if a.get("fee") is not None else "no fee"
    c.print(f"  {right}; top contributor [bold]{top}[/bold]; shares: {shares}; {a['spans']} verbatim spans; {fee}; "
            f"receipt {a['receipt_id'][:16]}…")


def _why(row: dict[str, Any]) -> str:
    """The reason behind a row's figures, from the person's role and the Datanet's verdicts on their records."""
    records = row["records"]
    said = ", ".join(f"{n} {why}" for why, n in sorted(records.items(), key=lambda kv: (-kv[1], kv[0])))
    role = row["role"]
    if role == "honest contributor":
        paid = "70% of each answer's fee, split by the answer's attribution shares" if row["earned"] else \
            "no answer drew on its records"
        return f"{said}: {paid}"
    if records:
        lost = "every record rejected, its stake lost" if "accepted" not in records else "some records rejected"
        return f"{said}: {lost}; only accepted records earn, so it earned nothing"
    return {
        "validator": "5% of each fee, pooled by stake; plus the stake of the records it voted down",
        "model builder": "15% of each fee of its adapter; paid the 2-unit training job",
        "compute and serving provider": "10% of each fee for serving; the 2-unit training job",
        "consumer": f"paid {units(row['spent'])} in fees for its answers from its prepaid balance",
        "Datanet curator and gatekeeper": "paid the fees of its transactions (gate verdicts, snapshot, …)",
    }.get(role, "")


def render_people(c: Console, table: dict[str, Any]) -> None:
    t = Table(title="who earned what, and why", show_lines=False)
    for col, justify in (("person", "left"), ("role", "left"), ("earned", "right"), ("vesting", "right"),
                         ("net change", "right"), ("why", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in table["people"]:
        change = row["change"]
        colour = "green" if change > 0 else "red" if change < 0 else "dim"
        t.add_row(row["person"], row["role"], units(row["earned"]), units(row["vesting"]),
                  f"[{colour}]{'+' if change > 0 else ''}{units(change)}[/{colour}]", escape(_why(row)))
    c.print(t)
    totals = table["totals"]
    c.print("[dim]earned: what settlement credited from the answers' fees; net change: balance, stake, prepaid "
            "balance and earnings now, less genesis (transaction fees count against it).[/dim]")
    conserved = ok_mark(bool(totals.get("conserved")))
    c.print(f"{conserved} settlement conserved every micro-unit: {totals.get('receipts')} receipts, "
            f"{units(totals.get('settled', 0))} settled = {units(totals.get('earned', 0))} earned + "
            f"{units(totals.get('held', 0))} held + {units(totals.get('refunded', 0))} refunded + "
            f"{units(totals.get('pooled', 0))} pooled")
