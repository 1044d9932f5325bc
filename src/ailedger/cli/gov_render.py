"""How the `gov` commands and `params NAME --history` draw their answers for people (the --json documents, drawn)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ailedger.cli.datanet_render import _row, _table
from ailedger.cli.output import kv_table, units


def _bps(v: int | None) -> str:
    return "-" if v is None else f"{v / 100:.2f} %"


def _window(p: dict[str, Any]) -> str:
    if p["voting_start"] is None:
        return f"deposits until {p['deposit_end']}"
    return f"{p['voting_start']}..{p['voting_end']}"


def render_list(c: Console, doc: dict[str, Any]) -> None:
    t = _table(f"proposals ({doc['total']} matching; treasury {units(doc['treasury'])}, "
               f"deposits held {units(doc['deposits_held'])})" + (" (more left out)" if doc["more"] else ""),
               "id", "kind", "status", "title", "deposit", "voting", "yes", "turnout", "execute at")
    for p in doc["proposals"]:
        _row(t, p["id"], p["kind"], p["status"], p["title"], units(p["deposit"]), _window(p),
             _bps(p["tally"]["yes_bps"]), _bps(p["tally"]["turnout_bps"]), p["execute_at"] or "-")
    c.print(t)


def render_proposal(c: Console, p: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = [
        ("id", p["id"]), ("kind", p["kind"]), ("status", p["status"]), ("title", p["title"]),
        ("proposer", p["proposer"]), ("submitted at", p["submitted"]), ("deposit", units(p["deposit"])),
        ("deposit period ends", p["deposit_end"]), ("voting", _window(p)), ("decided at", p["decided"] or "-"),
        ("executes / executed at", p["execute_at"] or "-"), ("deposit fate", p["deposit_fate"])]
    if p["execution_error"]:
        rows.append(("execution error", p["execution_error"]))
    if "spend" in p:
        rows.append(("spend", f"{units(p['spend']['amount'])} to {p['spend']['recipient']}"))
    if p["text"]:
        rows.append(("text", p["text"]))
    rows.append(("at height", p["height"]))
    c.print(kv_table(f"proposal {p['id']}", rows))
    if p.get("changes"):
        t = _table("parameter changes (all applied together, or none)", "name", "value")
        for ch in p["changes"]:
            _row(t, ch["name"], ch["value"])
        c.print(t)
    tally = p["tally"]
    t = _table(f"tally (weights: bonded stake at the block before voting opened; {tally['voters']} voters)",
               "yes", "no", "abstain", "veto", "voted", "bonded at open", "turnout", "yes of yes+no", "veto share")
    _row(t, units(tally["yes"]), units(tally["no"]), units(tally["abstain"]), units(tally["veto"]),
         units(tally["voted"]), units(tally["total_stake"]), _bps(tally["turnout_bps"]), _bps(tally["yes_bps"]),
         _bps(tally["veto_bps"]))
    c.print(t)
    if p["deposits"]:
        t = _table("deposits", "address", "amount")
        for d in p["deposits"]:
            _row(t, d["address"], units(d["amount"]))
        c.print(t)
    if "vote" in p:
        v = p["vote"]
        c.print(kv_table("vote", [("address", v["address"]), ("option", v["option"] or "none"),
                                  ("weight", units(v["weight"]))]))


def render_treasury(c: Console, doc: dict[str, Any]) -> None:
    c.print(kv_table("governance treasury", [("treasury", units(doc["treasury"])),
                                             ("deposits held on open proposals", units(doc["deposits_held"])),
                                             ("at height", doc["height"])]))


def render_params(c: Console, p: dict[str, Any]) -> None:
    t = _table("parameters (change one only by `ailedger gov propose --set NAME=VALUE`)", "name", "value", "bounds",
               "unit", "changes", "meaning")
    for name, v in p.items():
        _row(t, name, v["value"], f"{v['minimum']}..{v['maximum']}", v["unit"], v["changes"], v["doc"])
    c.print(t)


def render_param_history(c: Console, doc: dict[str, Any]) -> None:
    c.print(kv_table(doc["name"], [("value", doc["value"]), ("type", doc["type"]), ("default", doc["default"]),
                                   ("bounds", f"{doc['minimum']}..{doc['maximum']}"), ("unit", doc["unit"]),
                                   ("meaning", doc["doc"]), ("changes", doc["changes"]),
                                   ("at height", doc["height"])]))
    t = _table("history (each change by an executed proposal)" + (" (more left out)" if doc["more"] else ""),
               "height", "old", "new", "proposal")
    for ch in doc["history"]:
        _row(t, ch["height"], ch["old"], ch["new"], ch["proposal"])
    c.print(t)
