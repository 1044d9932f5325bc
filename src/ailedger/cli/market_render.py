"""How the `market` and `provider` commands draw their answers for people (the --json documents, drawn)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ailedger.cli.datanet_render import _row, _table
from ailedger.cli.output import units


def _res(r: dict[str, Any]) -> str:
    acc = f", {r['accelerators']}x {r['accelerator']}" if r["accelerators"] else ""
    return f"{r['cpu_cores']} cores, {r['memory_gib']} GiB{acc}" + (f" @{r['region']}" if r["region"] else "")


def _bps(v: int) -> str:
    return f"{v / 100:.2f} %"


def render_providers(c: Console, doc: dict[str, Any], offers_only: bool = False) -> None:
    rows = [p for p in doc["providers"] if p["offer"] or not offers_only]
    t = _table(f"{'offers' if offers_only else 'providers'} at height {doc['height']} ({len(rows)})",
               "provider", "operator", "bond", "offer", "per block", "per 1k tokens", "leases", "reputation")
    for p in rows:
        o = p["offer"]
        _row(t, p["address"], p["operator"], units(p["bond"]), _res(o) if o else "-",
             units(o["price_per_block"]) if o else "-", units(o["price_per_ktokens"]) if o else "-",
             p["active_leases"], _bps(p["reputation_bps"]))
    c.print(t)


def render_orders(c: Console, doc: dict[str, Any]) -> None:
    t = _table(f"orders at height {doc['height']} ({len(doc['orders'])})", "id", "kind", "model", "needs", "class",
               "unit", "max price", "escrow", "window end", "duration", "status", "lease")
    for o in doc["orders"]:
        _row(t, o["id"], o["kind"], o.get("model") or "-", _res(o["needs"]), o["needs"]["class"], o["unit"],
             units(o["max_price"]), units(o["escrow"]), o["window_end"], o["duration"], o["status"], o["lease"] or "-")
    c.print(t)
    for o in doc["orders"]:
        if "bids" in o:
            b = _table(f"bids of order {o['id']} in its current window", "provider", "price")
            for bid in o["bids"]:
                _row(b, bid["provider"], units(bid["price"]))
            c.print(b)


def render_leases(c: Console, doc: dict[str, Any]) -> None:
    t = _table(f"leases at height {doc['height']} ({len(doc['leases'])})", "id", "order", "provider", "class",
               "units", "price", "blocks", "last report", "tokens", "paid", "owed", "status")
    for x in doc["leases"]:
        _row(t, x["id"], x["order"], x["provider"], x["class"], x["units"], f"{units(x['price'])}/{x['unit']}",
             f"{x['start']}..{x['end']}", x["last_report"], x["tokens"], units(x["paid"]), units(x["owed"]),
             x["status"])
    c.print(t)


def render_checks(c: Console, doc: dict[str, Any]) -> None:
    t = _table(f"spot checks at height {doc['height']} ({len(doc['checks'])})", "id", "lease", "provider",
               "verifier", "report", "drawn", "deadline", "status")
    for x in doc["checks"]:
        _row(t, x["id"], x["lease"], x["provider"], x["verifier"], x["report"], x["created"], x["deadline"],
             x["status"])
    c.print(t)


def render_stats(c: Console, doc: dict[str, Any]) -> None:
    t = _table(f"concentration at height {doc['height']}: cap {_bps(doc['cap_bps'])} per operator and class "
               f"(shares of max(leased units, {doc['share_floor_units']}))",
               "class", "leased units", "operators", "top operator", "top share", "HHI",
               f"max top share, last {doc['window']} blocks", "rows")
    for k in doc["classes"]:
        now = k["now"]
        over = now["top_share_bps"] > doc["cap_bps"]
        _row(t, k["class"], now["total_units"], now["operators"], now["top_operator"] or "-",
             _bps(now["top_share_bps"]) + (" (over: no new lease for it)" if over else ""),
             now["hhi"], _bps(k["max_top_share_bps"]), len(k["history"]))
    c.print(t)
