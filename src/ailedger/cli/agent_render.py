"""Rich views of agents and tasks for `ailedger agent` and `ailedger task` (JSON comes from agents/service.py)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ailedger.cli.output import kv_table, short, units


def _bps(v: Any) -> str:
    return "-" if v is None else f"{int(v) / 100:.2f} %"


def render_agent(c: Console, a: dict[str, Any]) -> None:
    c.print(kv_table(f"agent {a['name']}", [
        ("operator", a["operator"]), ("model", a["model"]), ("policy", a["policy_hash"]),
        ("tools", ", ".join(a["tools"]) or "-"), ("task types", ", ".join(a["task_types"])),
        ("price per task", units(a["price"])), ("status", a["status"]),
        ("suspended until", a["suspended_until"] or "-"),
        ("verified score", f"{_bps(a['score_bps'])} ({a['verified_good']} passed, {a['verified_bad']} failed, "
                           f"{a['expired']} missed)"),
        ("pay per task", f"{_bps(a['pay_bps'])} of the fee"), ("verification rate", _bps(a["verify_rate_bps"])),
        ("tasks", f"{a['tasks']} taken, {a['paid']} paid"), ("earned", units(a["earned"])),
        ("slashed", units(a["slashed"])), ("registered at", a["registered"]), ("at height", a.get("height", "-"))]))


def render_agents(c: Console, doc: dict[str, Any]) -> None:
    t = Table(title=Text(f"agents (escrow {units(doc['escrow'])}, slashed pool {units(doc['pool'])})"),
              title_justify="left")
    for col in ("name", "status", "model", "task types", "price", "score", "pay", "verified ✓/✗", "tasks", "earned"):
        t.add_column(col)
    for a in doc["agents"]:
        t.add_row(a["name"], a["status"], a["model"], ", ".join(a["task_types"]), units(a["price"]),
                  _bps(a["score_bps"]), _bps(a["pay_bps"]), f"{a['verified_good']}/{a['verified_bad']}",
                  str(a["tasks"]), units(a["earned"]))
    c.print(t)


def render_task(c: Console, t: dict[str, Any]) -> None:
    verdict = t["verdict"] or ("drawn, waiting" if t["sampled"] and t["status"] == "submitted" else "-")
    draw = {"pending": f"drawn at the end of block {t['draw_height']}", "verify": "drawn for verification",
            "skip": "not drawn (paid unverified at the window's end)"}.get(t["draw"] or "", "-")
    c.print(kv_table(f"task {t['id']}", [
        ("status", t["status"]), ("agent", f"{t['agent']} (operator {t['operator']})"), ("consumer", t["consumer"]),
        ("type", t["task_type"]), ("input", t["input_hash"]), ("fee (escrow)", units(t["fee"])),
        ("checker", t["checker"] or "-"), ("output schema", t["schema_hash"] or "-"), ("spec", t["spec_hash"] or "-"),
        ("posted at", t["posted"]), ("result due by", t["result_deadline"]),
        ("result", f"{t['result_hash']} at {t['result_height']}" if t["result_hash"] else "-"),
        ("verification", "-" if t["result_height"] is None else
         f"{draw}, rate {_bps(t['sample_rate_bps'])}; window ends {t['verify_deadline']}"),
        ("verdict", verdict), ("verifier", t["verifier"] or "-"), ("closed at", t["closed"] or "-"),
        ("paid to operator", units(t["paid"])), ("refunded", units(t["refunded"])), ("slashed", units(t["slashed"]))]))


def render_tasks(c: Console, doc: dict[str, Any]) -> None:
    t = Table(title=Text(f"tasks ({doc['total']})"), title_justify="left")
    for col in ("id", "status", "agent", "type", "fee", "posted", "due", "verdict", "paid", "refunded"):
        t.add_column(col)
    for x in doc["tasks"]:
        t.add_row(str(x["id"]), x["status"], x["agent"], x["task_type"], units(x["fee"]), str(x["posted"]),
                  str(x["result_deadline"]), x["verdict"] or "-", units(x["paid"]), units(x["refunded"]))
    c.print(t)


def render_registry(c: Console, doc: dict[str, Any], which: str) -> None:
    t = Table(title=Text(f"registered {which}"), title_justify="left")
    t.add_column("name", style="bold cyan")
    t.add_column("what it does")
    for name, text in doc[which].items():
        t.add_row(name, text)
    c.print(t)


def render_run(c: Console, doc: dict[str, Any]) -> None:
    out = doc["output"]
    c.print(kv_table(f"agent {out['agent']} on task {doc['task_id']}", [
        ("model", out["model"]), ("answer", str(out.get("answer"))), ("text", short(out["text"], 200)),
        ("tool calls", "; ".join(f"{x['tool']}({x['argument']}) = {x['result']}" for x in out["tool_calls"]) or "-"),
        ("tokens", f"{doc['prompt_tokens']} prompt, {doc['completion_tokens']} completion"),
        ("output blob", doc["result_hash"]), ("submitted", "yes" if doc.get("tx") else "no (--no-submit)")]))
    if doc.get("task"):
        render_task(c, doc["task"])


def render_verdict(c: Console, doc: dict[str, Any]) -> None:
    check = doc["check"]
    c.print(f"[bold]{'passed' if check['passed'] else 'failed'}[/bold]: {check['reason']}")
    if doc.get("task"):
        render_task(c, doc["task"])
