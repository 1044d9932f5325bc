"""How the `model` and `job` commands draw their answers for people.

Every function takes the JSON document the command also prints under --json, so both say the same.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ailedger.cli.datanet_render import _row, _table
from ailedger.cli.output import kv_table, short, units


def render_base(c: Console, b: dict[str, Any]) -> None:
    c.print(kv_table(f"base model {b['name']}", [
        ("weights hash", b["weights_hash"]), ("config hash", b["config_hash"]), ("architecture", b["architecture"]),
        ("parameters", f"{b['params_count']:,}"), ("context length", b["context_length"]), ("licence", b["licence"]),
        ("registrar", b["registrar"]), ("registered at height", b["height"]),
        ("models on it", ", ".join(b.get("models") or []) or "none yet"),
    ]))


def render_model(c: Console, m: dict[str, Any]) -> None:
    dn, base = m["datanet"], m["base"]
    state = f"retired at height {m['retired_height']}" if m["retired"] else "live"
    c.print(kv_table(f"model {m['id']}", [
        ("owner", m["owner"]), ("status", state), ("price per 1k tokens", units(m["price_per_1k_tokens"])),
        ("base", f"{base['name']} (weights {base['weights_hash']})"), ("adapter hash", m["adapter_hash"]),
        ("rank", m["rank"]),
        ("trained on", f"{dn['name']} version {dn['version']} ({dn['records']} records, root {dn['snapshot_root']})"),
        ("hyper-parameters", f"{m['hyperparams_hash']} (blob)"), ("model card", f"{m['card_hash']} (blob)"),
        ("training job", m["job_id"] or "none"), ("published at height", m["published_height"]),
        ("attribution root", f"{m['attribution_root']} (height {m['attribution_height']})"
         if m.get("attribution_root") else "none published"),
    ]))
    if len(m.get("versions") or []) > 1:
        t = _table("versions", "version", "adapter hash", "price/1k", "height", "status")
        for v in m["versions"]:
            _row(t, v["version"], short(v["adapter_hash"]), units(v["price_per_1k_tokens"]), v["published_height"],
                 "retired" if v["retired"] else "live")
        c.print(t)


def render_models(c: Console, doc: dict[str, Any]) -> None:
    if not doc["models"]:
        c.print("no models published yet; publish one with `ailedger model publish`")
        return
    t = _table(f"models at height {doc['height']}", "model", "base", "trained on", "rank", "price/1k", "adapter",
               "status")
    for m in doc["models"]:
        _row(t, m["id"], m["base"]["name"], f"{m['datanet']['name']} v{m['datanet']['version']}", m["rank"],
             units(m["price_per_1k_tokens"]), short(m["adapter_hash"]), "retired" if m["retired"] else "live")
    c.print(t)


def render_bases(c: Console, doc: dict[str, Any]) -> None:
    if not doc["bases"]:
        c.print("no base models yet; register one with `ailedger model register-base`")
        return
    t = _table(f"base models at height {doc['height']}", "name", "architecture", "parameters", "context",
               "weights hash")
    for b in doc["bases"]:
        _row(t, b["name"], b["architecture"], f"{b['params_count']:,}", b["context_length"], b["weights_hash"])
    c.print(t)


def render_job(c: Console, j: dict[str, Any]) -> None:
    c.print(kv_table(f"job {j['id']}", [
        ("kind", j["kind"]), ("status", j["status"]), ("budget", units(j["budget"])), ("poster", j["poster"]),
        ("spec", f"{j['spec_hash']} (blob)"), ("posted at height", j["posted"]), ("deadline height", j["deadline"]),
        ("worker", j["worker"] or "none yet"), ("claimed at height", j["claimed"]),
        ("result", j["result_hash"]), ("delivered at height", j["delivered"]), ("closed at height", j["closed"]),
    ]))


def render_jobs(c: Console, doc: dict[str, Any]) -> None:
    if not doc["jobs"]:
        c.print("no jobs" + (f" {doc['status']}" if doc.get("status") else "") + "; post one with `ailedger job post`")
        return
    t = _table(f"jobs at height {doc['height']}", "id", "kind", "status", "budget", "deadline", "poster", "worker")
    for j in doc["jobs"]:
        _row(t, j["id"], j["kind"], j["status"], units(j["budget"]), j["deadline"], short(j["poster"]),
             short(j["worker"] or ""))
    c.print(t)
