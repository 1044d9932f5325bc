"""How the `earnings` and `withdraw` commands draw their answers for people (the --json documents, drawn)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ailedger.cli.datanet_render import _row, _table
from ailedger.cli.output import kv_table, short, units


def render_earnings(c: Console, doc: dict[str, Any]) -> None:
    f = doc["filter"]
    period = f"heights {f['from_height'] if f['from_height'] is not None else 0}..{f['to_height'] or 'now'}"
    c.print(kv_table("earnings", [
        ("address", doc["address"]), ("balance (withdrawable)", units(doc["balance"])),
        ("held (vesting)", units(doc["held"])), ("earned, lifetime", units(doc["earned"])),
        ("forfeited, lifetime", units(doc["forfeited"])), ("withdrawn, lifetime", units(doc["withdrawn"])),
        ("lines shown", f"{len(doc['lines'])} ({period}" + (f", Datanet {f['datanet']}" if f["datanet"] else "")
         + (f", model {f['model']}" if f["model"] else "") + (", more left out)" if doc["more"] else ")")),
        ("at height", doc["height"]),
    ]))
    if doc["vesting"]:
        t = _table("vesting", "Datanet", "amount", "released or forfeited at height")
        for v in doc["vesting"]:
            _row(t, v["datanet"], units(v["amount"]), v["release_height"])
        c.print(t)
    for title, key in (("per Datanet", "by_datanet"), ("per model", "by_model")):
        if doc[key]:
            t = _table(title, "name", "earned", "held", "forfeited", "payments")
            for name, s in doc[key].items():
                _row(t, name, units(s["amount"]), units(s["held"]), units(s["forfeited"]), s["count"])
            c.print(t)
    if doc["lines"]:
        t = _table("lines (one per block; `earnings ADDR --line HEIGHT` lists the receipts behind one)",
                   "height", "Datanet", "model", "role", "earned", "held", "forfeited", "payments")
        for line in doc["lines"]:
            for x in line["entries"]:
                _row(t, line["height"], x["datanet"] or "-", x["model"] or "-", x["role"], units(x["amount"]),
                     units(x["held"]), units(x["forfeited"]), x["count"])
        c.print(t)


def render_line(c: Console, doc: dict[str, Any]) -> None:
    t = _table(f"line at height {doc['line_height']} for {doc['address']}", "Datanet", "model", "role", "earned",
               "held", "forfeited", "payments")
    for x in doc["entries"]:
        _row(t, x["datanet"] or "-", x["model"] or "-", x["role"], units(x["amount"]), units(x["held"]),
             units(x["forfeited"]), x["count"])
    c.print(t)
    r = _table("receipts behind it" + (" (more left out)" if doc["more"] else ""), "receipt", "model", "charged",
               "parts")
    for x in doc["receipts"]:
        parts = ", ".join(f"{p['role']} {units(p['amount'])}" + (f" (record {short(p['record'], 12)})"
                                                                 if "record" in p else "") for p in x["parts"])
        _row(r, short(x["id"]), x["model"], units(x["charged"]), parts)
    c.print(r)


def render_withdrawn(c: Console, doc: dict[str, Any]) -> None:
    c.print(kv_table("withdrawn", [("address", doc["address"]), ("withdrawn", units(doc["withdrawn_now"])),
                                   ("earnings balance left", units(doc["balance"])),
                                   ("held (vesting)", units(doc["held"]))]))
