"""How the `billing` commands draw their answers for people.

Every function takes the JSON document the command also prints under --json, so both say the same.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ailedger.cli.datanet_render import _row, _table
from ailedger.cli.output import kv_table, short, units


def _key_state(k: dict[str, Any]) -> str:
    if k["revoked"]:
        return f"revoked at height {k['revoked_height']}"
    if not k["live"]:
        return f"expired after height {k['expires']}"
    return "live" + (f" until height {k['expires']}" if k["expires"] else "")


def render_account(c: Console, a: dict[str, Any]) -> None:
    withdrawing = units(a["withdrawing"]) + (f" (back to the balance at height {a['release_height']})"
                                             if a["release_height"] else "")
    c.print(kv_table("billing account", [
        ("address", a["address"]), ("prepaid", units(a["prepaid"])), ("withdrawing", withdrawing),
        ("available to receipts", units(a["available"])), ("live keys", f"{a['live_keys']} of {a['keys_total']}"),
        ("at height", a["height"]),
    ]))
    if a["keys"]:
        t = _table("API keys", "key hash", "provider", "allowance", "spent", "state", "receipts")
        for k in a["keys"]:
            _row(t, short(k["key_hash"]), short(k["provider"], 20), units(k["allowance"]), units(k["spent"]),
                 _key_state(k), k["receipts"])
        c.print(t)


def render_key(c: Console, k: dict[str, Any]) -> None:
    c.print(kv_table("API key", [
        ("key hash", k["key_hash"]), ("account", k["account"]), ("provider", k["provider"]), ("state", _key_state(k)),
        ("allowance", units(k["allowance"])), ("spent", units(k["spent"])), ("remaining", units(k["remaining"])),
        ("expires", k["expires"] or "never"), ("created at height", k["created_height"]),
        ("receipts", k["receipts"]),
        ("account funds", f"{units(k['account_prepaid'])} prepaid + {units(k['account_withdrawing'])} withdrawing"),
    ]))


def render_new_key(c: Console, doc: dict[str, Any]) -> None:
    render_key(c, doc)
    c.print(f"\nAPI key: {doc['api_key']}", markup=False)
    c.print("Copy it now: it is shown only this once and stored nowhere (the ledger holds only its hash).")


def render_receipt(c: Console, r: dict[str, Any]) -> None:
    model = r["model"] + (f"@{r['version']}" if r["version"] else " (base only)")
    c.print(kv_table("receipt", [
        ("id", r["id"]), ("status", r["status"]), ("model", model), ("base hash", r["base_hash"]),
        ("adapter hash", r["adapter_hash"] if r["version"] else "none"),
        ("tokens", f"{r['prompt_tokens']} prompt + {r['completion_tokens']} completion"),
        ("price per 1k tokens", units(r["price"])), ("fee", units(r["fee"])), ("charged", units(r["charged"])),
        ("caller", r["caller"] or "unknown"), ("provider", r["provider"]), ("key hash", r["key_hash"]),
        ("citations", ", ".join(short(h) for h in r["citations"]) or "none"),
        ("attribution", _attribution(r)),
        ("block", f"{r['height']} (transaction {r['tx_id']})"), ("settled", "yes" if r["settled"] else "not yet"),
    ]))


def _attribution(r: dict[str, Any]) -> str:
    """The record's digest and the contributors it pays, or why there is nothing to pay."""
    digest = r.get("attribution") or "0" * 64
    if not any(ch != "0" for ch in digest):
        return "none"
    shares = r.get("shares") or []
    paid = ", ".join(f"record {s['record'][:12]}… {s['bp'] / 100:.2f}%" for s in shares) or "no record earned"
    return f"{short(digest)} ({paid})"


def render_receipts(c: Console, doc: dict[str, Any]) -> None:
    if not doc["receipts"]:
        c.print("no receipts" + (" for this key" if doc.get("key_hash") else "") + " yet")
        return
    t = _table(f"receipts {doc['offset'] + 1}-{doc['offset'] + len(doc['receipts'])} of {doc['total']}",
               "id", "height", "model", "tokens", "fee", "charged", "status")
    for r in doc["receipts"]:
        _row(t, short(r["id"]), r["height"], r["model"] + (f"@{r['version']}" if r["version"] else ""),
             r["prompt_tokens"] + r["completion_tokens"], units(r["fee"]), units(r["charged"]), r["status"])
    c.print(t)
    if doc["next_offset"] is not None:
        c.print(f"more: --offset {doc['next_offset']}")


def render_escrow(c: Console, e: dict[str, Any]) -> None:
    c.print(kv_table("billing escrow", [
        ("escrowed (unsettled fees)", units(e["escrowed"])), ("receipts", e["receipts"]),
        ("unsettled receipts", e["unsettled"]), ("at height", e["height"]),
    ]))
