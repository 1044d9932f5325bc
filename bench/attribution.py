"""The attribution benchmark (issue 9): fact tracing, gaming, counterfactual quality and cost, in one run.

(a) Fact tracing and (b) gaming and (d) cost: `generate_facts` writes a fictional Datanet (each owner
its own made-up facts in several paraphrases, places and sentence templates shared across owners)
plus keyword stuffers (records repeating the questions and their keywords, never an answer),
and `attribution.evaluate.run_eval` runs the whole loop on SmolLM2-135M-Instruct: a real embedded
ledger, the snapshot, a LoRA fine-tune, the attribution bundle, every question answered by the
serving engine and attributed by this engine, BM25 (query = prompt + answer) and TRAK (`traker`,
same k, same checkpoints). Every method's scores are paid out by the same rule
(`combine.shares_from_scores`). (c) LDS: `attribution.lds.run_lds` on the tiny model (100 retrainings
on random halves, 50 with `--quick`; the setup is printed and in the JSON).

Sizes: the full run is 6 owners x 2 facts x 3 paraphrases + 3 stuffers x 3 records on SmolLM2;
`--quick` is 3 owners x 2 facts x 2 paraphrases + 2 stuffers x 2 records. The last line of stdout
is the JSON of figures; docs/attribution-eval.md says how to read them.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

import bench
from ailedger.attribution.evaluate import EvalConfig, run_eval
from ailedger.attribution.facts import generate_facts
from ailedger.attribution.lds import LdsConfig, run_lds
from ailedger.modules import default_runtime

_err = Console(stderr=True)
FULL = {"owners": 6, "facts_per_owner": 2, "paraphrases": 3, "stuffers": 3, "stuffer_records": 3}
QUICK = {"owners": 3, "facts_per_owner": 2, "paraphrases": 2, "stuffers": 2, "stuffer_records": 2}
TARGETS = {"fact_top1": (">=", 0.9), "mrr_vs_best_baseline": (">=", 1.0), "stuffer_share": ("<=", 0.05),
           "stuffer_share_vs_bm25": ("<=", 0.25), "lds_vs_trak": (">=", 1.0), "cost_ratio": ("<=", 0.5)}


def _ratio(ours: float, theirs: float) -> float | None:
    """ours / theirs; None where the quotient means nothing (a zero or negative baseline)."""
    if theirs > 0:
        return ours / theirs
    return 0.0 if ours == 0 and theirs == 0 else None


def _met(name: str, value: float | None) -> bool | None:
    if value is None:
        return None
    op, bound = TARGETS[name]
    return value >= bound if op == ">=" else value <= bound


def _progress(label: str) -> Any:
    seen: set[str] = set()
    t0 = time.perf_counter()

    def tick(stage: str, done: int, total: int | None) -> None:
        if stage not in seen:
            seen.add(stage)
            _err.print(f"[dim]{label}: {stage} (at {time.perf_counter() - t0:.0f} s)…[/]")

    return tick


def figures(report: dict[str, Any], lds_report: dict[str, Any]) -> dict[str, Any]:
    m = report["methods"]
    engine, bm25, trak = m["engine"], m["bm25"], m.get("trak")
    # top-1 and MRR over the answers that state their fact: only there is "the right record" known
    # (an adapter that answers Vellmar's question with Quessaby's keeper was taught by Quessaby's owner)
    best = max(bm25["stated"]["mrr"], trak["stated"]["mrr"] if trak else 0.0)
    lds = lds_report["lds"]
    out: dict[str, Any] = {
        "fact_top1": engine["stated"]["top1"], "mrr": engine["stated"]["mrr"],
        "mrr_vs_best_baseline": _ratio(engine["stated"]["mrr"], best),
        "stuffer_share": engine["extra_share"],
        "stuffer_share_vs_bm25": _ratio(engine["extra_share"], bm25["extra_share"]),
        "lds": lds["engine"], "lds_vs_trak": _ratio(lds["engine"], lds["trak"]) if "trak" in lds else None,
        "lds_seen": lds_report["lds_seen"]["engine"],
        "lds_seen_vs_trak": _ratio(lds_report["lds_seen"]["engine"], lds_report["lds_seen"]["trak"])
        if "trak" in lds_report["lds_seen"] else None,
        "cost_ratio": report["cost"]["cost_ratio"], "index_bytes_per_record": report["cost"]["index_bytes_per_record"],
        "owner_share": engine["owner_share"], "answers_stating_fact": report["correct"],
        "fact_top1_all_answers": engine["top1"], "mrr_all_answers": engine["mrr"],
        "influence_top1": m["influence"]["stated"]["top1"], "influence_mrr": m["influence"]["stated"]["mrr"],
        "influence_stuffer_share": m["influence"]["extra_share"], "lds_influence": lds["influence"],
        "bm25_top1": bm25["stated"]["top1"], "bm25_mrr": bm25["stated"]["mrr"],
        "bm25_stuffer_share": bm25["extra_share"],
        "attribute_s_per_answer": report["cost"]["attribute_s_mean"],
        "generate_s_per_answer": report["cost"]["generate_s_mean"],
    }
    if trak is not None:
        out |= {"trak_top1": trak["stated"]["top1"], "trak_mrr": trak["stated"]["mrr"],
                "trak_stuffer_share": trak["extra_share"]}
    if "trak" in lds:
        out |= {"lds_trak": lds["trak"], "lds_minus_trak": lds["engine"] - lds["trak"],
                "lds_seen_trak": lds_report["lds_seen"]["trak"]}
    out["lds_seen_influence"] = lds_report["lds_seen"]["influence"]
    out["targets_met"] = {name: _met(name, out[name]) for name in TARGETS}
    setup = report["setup"]
    out["setup"] = {"fact_tracing": {k: setup[k] for k in ("base", "facts", "owners", "records", "fact_records",
                                                             "extra_records", "extra_owners", "steps",
                                                             "checkpoints", "final_loss", "train_s", "bundle_s")}
                    | {"k": setup["config"]["k"], "lr": setup["config"]["lr"], "epochs": setup["config"]["epochs"],
                       "rank": setup["config"]["rank"], "batch_size": setup["config"]["batch_size"],
                       "top_layers": setup["top_layers"]},
                    "lds": lds_report["setup"]}
    return out


def render(out: dict[str, Any], report: dict[str, Any]) -> None:
    table = Table(title=f"attribution: fact tracing ({report['correct']:.0%} of answers state their fact) and "
                        "gaming, SmolLM2 LoRA, the same payout rule for every method")
    for col in ("method", "top-1 owner", "MRR", "top-1 / MRR, all answers", "paid to stuffers", "paid to the owner"):
        table.add_column(col)
    for name, m in report["methods"].items():
        st = m["stated"]
        table.add_row(name, f"{st['top1']:.3f}", f"{st['mrr']:.3f}", f"{m['top1']:.3f} / {m['mrr']:.3f}",
                      f"{m['extra_share']:.1%}", f"{m['owner_share']:.1%}")
    _err.print(table)
    lds = Table(title=f"targets; counterfactual quality (LDS, tiny model, {out['setup']['lds']['subsets']} "
                      "half-subset retrainings) and cost")
    for col in ("figure", "value", "target", "met"):
        lds.add_column(col)
    for name, (op, bound) in TARGETS.items():
        value = out[name]
        lds.add_row(name, "n/a" if value is None else f"{value:.3f}", f"{op} {bound}",
                    {True: "yes", False: "no", None: "-"}[out["targets_met"][name]])
    lds.add_row("LDS, held-out answers (engine / influence / TRAK)",
                f"{out['lds']:.3f} / {out['lds_influence']:.3f} / {out.get('lds_trak', float('nan')):.3f}", "", "")
    lds.add_row("LDS, trained answers (engine / influence / TRAK)",
                f"{out['lds_seen']:.3f} / {out['lds_seen_influence']:.3f} / "
                f"{out.get('lds_seen_trak', float('nan')):.3f}", "", "")
    lds.add_row("index bytes per record", f"{out['index_bytes_per_record']:,.0f}", "", "")
    _err.print(lds)


def run(quick: bool) -> dict[str, Any]:
    # One thread: on a shared two-core machine torch's two OpenMP workers spin against any busy
    # neighbour, and a query's features took 4 to 38 s instead of 1.1 s (docs/attribution-eval.md).
    torch.set_num_threads(1)
    sizes = QUICK if quick else FULL
    facts = generate_facts(**sizes)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-attribution-") as tmp:
        _err.print(f"[dim]fact tracing: {len(facts.facts)} facts, {len(facts.stuffers)} stuffer records, "
                   f"SmolLM2-135M-Instruct…[/]")
        report = run_eval(facts.facts, facts.stuffers, Path(tmp) / "eval", default_runtime(), EvalConfig(),
                          _progress("fact tracing"))
        _err.print("[dim]LDS on the tiny model…[/]")
        lds_report = run_lds(Path(tmp) / "lds", LdsConfig(subsets=50 if quick else 100), _progress("lds"))
    out = figures(report, lds_report)
    out["seconds"] = time.perf_counter() - t0
    out["quick"] = quick
    render(out, report)
    return out


if __name__ == "__main__":
    sys.exit(bench.main(run, sys.argv[1:]))
