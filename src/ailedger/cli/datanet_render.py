"""How the `datanet` and `reputation` commands draw their answers for people (tables, one line per verdict).

Kept apart from the commands so that each file stays about one thing; every function takes the
JSON document the command also prints under --json, so both outputs say the same.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ailedger.cli.output import kv_table, marked, short, units


def _table(title: str, *columns: str) -> Table:
    table = Table(title=Text(title), title_justify="left", box=None, padding=(0, 2, 0, 0))
    for c in columns:
        table.add_column(c, overflow="fold")
    return table


def _row(table: Table, *cells: Any) -> None:
    table.add_row(*(Text("" if c is None else str(c)) for c in cells))


def counts_text(counts: dict[str, int]) -> str:
    keys = ("pending", "accepted", "rejected", "gate_rejected", "expired")
    return ", ".join(f"{counts[k]} {k.replace('_', '-')}" for k in keys)


def render_datanet(c: Console, d: dict[str, Any]) -> None:
    split = d["fee_split_bps"]
    c.print(kv_table(f"datanet {d['name']}", [
        ("topic", d["topic"]), ("description", d["description"]), ("owner", d["owner"]),
        ("licence", d["licence"]), ("schema", "none" if d["schema_hash"] == "00" * 32 else d["schema_hash"]),
        ("stake per record", units(d["stake_per_record"])), ("quorum", d["quorum"]),
        ("voting window", f"{d['window_blocks']} blocks"),
        ("fee split (bps)", f"data {split['data']}, model owner {split['model_owner']}, compute {split['compute']}, "
                            f"validators {split['validators']}"),
        ("near-duplicate threshold", f"{d['neardup_threshold_bps'] / 10_000:.2f} (Jaccard)"),
        ("PII policy", d["pii_policy"]), ("created at height", d["created_height"]),
        ("records", counts_text(d["counts"])), ("validator pool", units(d["pool"])),
        ("accepted root", d["accepted_root"]), ("gatekeepers", ", ".join(d["gatekeepers"])),
    ]))
    if d.get("versions"):
        t = _table("versions", "version", "records", "height", "root")
        for v in d["versions"]:
            _row(t, v["version"], v["count"], v["height"], v["root"])
        c.print(t)
    if d.get("validator_details"):
        t = _table("validators", "address", "bonded stake", "validator reputation")
        for v in d["validator_details"]:
            _row(t, v["address"], units(v["stake"]), f"{v['reputation_bps'] / 100:.2f}%")
        c.print(t)
    if d.get("contributors"):
        t = _table(f"contributors ({d['contributors_total']})", "address", "submitted", "accepted", "rejected",
                   "gate-rejected", "expired", "reputation")
        for p in d["contributors"]:
            _row(t, p["address"], p["submitted"], p["accepted"], p["rejected"], p["gate_rejected"], p["expired"],
                 f"{p['reputation_bps'] / 100:.2f}%")
        c.print(t)


def render_list(c: Console, doc: dict[str, Any]) -> None:
    if not doc["datanets"]:
        c.print("no Datanets yet; open one with `ailedger datanet create`")
        return
    t = _table(f"datanets at height {doc['height']}", "name", "topic", "stake/record", "quorum", "window", "records",
               "versions")
    for d in doc["datanets"]:
        _row(t, d["name"], d["topic"], units(d["stake_per_record"]), d["quorum"], d["window_blocks"],
             counts_text(d["counts"]), d["counts"]["versions"])
    c.print(t)


def _votes_text(votes: list[dict[str, Any]]) -> str:
    yes = [v for v in votes if v["accept"]]
    no = [v for v in votes if not v["accept"]]
    return (f"{len(yes)} accept ({units(sum(v['weight'] for v in yes))}), "
            f"{len(no)} reject ({units(sum(v['weight'] for v in no))})")


def render_review(c: Console, doc: dict[str, Any]) -> None:
    records = doc["records"]
    if not records:
        c.print(f"no pending records in {doc['datanet']} after height {doc['height']}")
        return
    c.print(f"{len(records)} pending record(s) in {doc['datanet']} at height {doc['height']} "
            f"(votes count while the height is at most the window end)")
    for r in records:
        c.print(kv_table(r["hash"], [
            ("contributor", r["contributor"]), ("stake", units(r["stake"])), ("submitted at", r["submitted"]),
            ("window ends at", r["window_end"]), ("votes so far", _votes_text(r["votes"])),
            ("text", r.get("text", "(record bytes not in the blob store)")),
        ]))


def render_verdicts(c: Console, doc: dict[str, Any]) -> None:
    """`datanet check`: one line per failing record, then the summary."""
    for r in doc["records"]:
        if r["passed"]:
            continue
        for v in r["verdicts"]:
            if not v["passed"]:
                c.print(Text.assemble(("✗ ", "red"), f"line {r['line']} ({short(r['record_hash'], 12)}): ",
                                      (f"{v['gate_name']}/{v['reason_name']}", "bold"), f" — {v['message']}"))
    for r in doc["records"]:
        redactions = [v for v in r["verdicts"] if v["passed"]]
        for v in redactions:
            c.print(Text.assemble(("~ ", "yellow"), f"line {r['line']}: {v['message']}"))
    render_summary(c, "check", doc["summary"])


def tx_list(ids: list[str]) -> str:
    if len(ids) <= 3:
        return ", ".join(ids) or "none"
    return f"{len(ids)}: first {ids[0]}, last {ids[-1]} (all of them under --json)"


def render_summary(c: Console, title: str, s: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = [("records read", s["read"]), ("passed every gate", s["passed"]),
                                   ("duplicates in the file", s["duplicates_in_file"]),
                                   ("already in the Datanet", s["already_in_datanet"]),
                                   ("rejected by a gate", s["rejected"])]
    rows += [(f"  {reason}", n) for reason, n in s["by_reason"].items()]
    if "staked" in s and title != "check":
        rows += [("to stake", s["to_stake"]), ("staked", marked(s["staked"] == s["to_stake"], str(s["staked"]))),
                 ("stake bonded", units(s["stake_total"])), ("transactions", tx_list(s["tx_ids"]))]
    c.print(kv_table(title, rows))


def render_contribute(c: Console, s: dict[str, Any]) -> None:
    for e in s["examples"]:
        c.print(Text.assemble(("✗ ", "red"), f"line {e['line']}: ", "; ".join(e["reasons"])))
    render_summary(c, f"contribute {s['file']} to {s['datanet']}", s)


def render_gate(c: Console, s: dict[str, Any]) -> None:
    for r in s["rejections"]:
        c.print(Text.assemble(("✗ ", "red"), f"{short(r['record_hash'], 16)}: ",
                              (f"{r['gate_name']}/{r['reason_name']}", "bold"), f" — {r['message']}"))
    rows: list[tuple[str, Any]] = [
        ("pending records", s["pending"]), ("checked before", s["already_checked"]), ("checked now", s["checked"]),
        ("passed (left to validators)", s["passed"]), ("rejected", s["rejected"]),
        ("unreadable (blob missing)", s["unreadable"]), ("off-topic gate", "on" if s["offtopic"] else "off"),
    ]
    rows += [(f"  {reason}", n) for reason, n in s["by_reason"].items()]
    rows += [("verdict transactions", tx_list(s["tx_ids"])),
             ("near-duplicate index", f"{s['index_size']} records in {s['index_path']}")]
    c.print(kv_table(f"gates of {s['datanet']}", rows))


def render_votes(c: Console, doc: dict[str, Any]) -> None:
    verb = "accept" if doc["accept"] else "reject"
    c.print(marked(True, f"voted {verb} on {len(doc['records'])} record(s) of {doc['datanet']} "
                         f"in {len(doc['tx_ids'])} transaction(s)"))
    if doc.get("reason"):
        c.print(f"reason (kept locally in {doc['log']}; the ledger stores no reason): {doc['reason']}")


def render_reputation(c: Console, doc: dict[str, Any]) -> None:
    t = _table(f"reputation of {doc['address']} at height {doc['height']}", "role", "score", "alpha", "beta",
               "last update")
    scale = doc["scale"]
    for role, r in doc["roles"].items():
        _row(t, role.replace("_", " "), f"{r['score_bps'] / 100:.2f}%", f"{r['alpha'] / scale:.3f}",
             f"{r['beta'] / scale:.3f}", r["last_height"] or "never")
    c.print(t)



def render_record(c: Console, d: dict[str, Any]) -> None:
    """One record: its fate and what decided it (the gate verdict, the votes, or the retraction)."""
    rows: list[tuple[str, Any]] = [
        ("record", d["hash"]), ("datanet", d["datanet"]), ("status", d["status"]), ("contributor", d["contributor"]),
        ("stake", units(d["stake"])), ("submitted", d["submitted"]), ("window ends", d["window_end"]),
        ("decided", d["finalised"] if d["finalised"] is not None else "not yet")]
    gate = d.get("gate")
    if gate:
        rows.append(("gate verdict", f"{gate.get('gate_name')}/{gate.get('reason_name')}: {gate.get('message', '')}"))
    for v in d["votes"]:
        rows.append(("vote", f"{'accept' if v['accept'] else 'reject'} by {v['voter']} (weight {v['weight']:,})"))
    retracted = d.get("retracted")
    if retracted:
        rows.append(("retracted", f"at height {retracted['height']} by {retracted['by']}: {retracted['reason']} "
                                  "(no longer paid)"))
    c.print(kv_table("record", rows))
