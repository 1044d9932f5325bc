"""`ailedger attribution eval FACTS.jsonl [--extra RECORDS.jsonl]`: the whole attribution loop on your facts.

The loop is `attribution.evaluate.run_eval` (a Datanet on an embedded node in the work directory,
its snapshot, a LoRA fine-tune, the attribution bundle, each question answered by the serving
engine, each answer attributed by the engine, BM25 and TRAK); this file reads the two files, draws
a Rich bar per stage on stderr and prints the figures as tables, or as one JSON document under
`--json`. The file formats and how to read the figures are in docs/attribution-eval.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ailedger.cli.cluster_opt import RayOpt, cluster_for
from ailedger.cli.output import emit, kv_table, settings
from ailedger.cli.progress import stage_bars
from ailedger.core import errors
from ailedger.core.errors import LedgerError

LABELS = {"engine": "this engine", "influence": "influence alone", "bm25": "BM25 (prompt + answer)", "trak": "TRAK"}


def methods_table(report: dict[str, Any]) -> Table:
    table = Table(title=Text("fact tracing: each method's scores paid out by the same rule"), title_justify="left")
    for col in ("method", "top-1 owner", "MRR (right record)", "top-1 / MRR, answers stating the fact",
                "paid to the owner", "paid to extra-only owners"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, m in report["methods"].items():
        st = m["stated"]
        table.add_row(LABELS.get(name, name), f"{m['top1']:.3f}", f"{m['mrr']:.3f}",
                      f"{st['top1']:.3f} / {st['mrr']:.3f} ({st['answers']})" if st["answers"] else "-",
                      f"{m['owner_share']:.1%}",
                      f"{m['extra_share']:.1%}")
    return table


def shares_table(report: dict[str, Any]) -> Table:
    table = Table(title=Text("share of all attribution paid to each owner"), title_justify="left")
    names = list(report["methods"])
    table.add_column("owner")
    for name in names:
        table.add_column(LABELS.get(name, name), justify="right")
    owners = sorted({o for m in report["methods"].values() for o in m["shares"]})
    for owner in owners:
        table.add_row(Text(owner), *[f"{report['methods'][n]['shares'].get(owner, 0.0):.1%}" for n in names])
    return table


def answers_table(report: dict[str, Any]) -> Table:
    table = Table(title=Text("answers (top contributor by each method)"), title_justify="left")
    names = list(report["methods"])
    for col in ("fact", "owner", "answer", "states it", *[LABELS.get(n, n) for n in names]):
        table.add_column(col, overflow="fold")
    for row in report["answers"]:
        table.add_row(Text(row["fact"]), Text(row["owner"]), Text(row["answer"]), "yes" if row["correct"] else "no",
                      *[Text(str(row["top"].get(n) or "-")) for n in names])
    return table


def render(c: Console, report: dict[str, Any]) -> None:
    setup, cost = report["setup"], report["cost"]
    c.print(kv_table("attribution eval", [
        ("base", setup["base"]), ("facts", f"{setup['facts']} of {setup['owners']} owners, "
                                           f"{setup['fact_records']} records"),
        ("extra records", f"{setup['extra_records']} (owners holding only extra records: {setup['extra_owners']})"),
        ("snapshot", setup["snapshot_root"]),
        ("adapter", f"{setup['steps']} steps, final loss {setup['final_loss']:.4f}, {setup['checkpoints']} "
                    f"checkpoints, {setup['train_s']:.0f} s"),
        ("answers stating the fact", f"{report['correct']:.1%} ({report['empty_answers']} empty)"),
        ("cost", f"attribution {cost['attribute_s_mean']:.2f} s per answer, {cost['cost_ratio']:.2f} x its "
                 f"generation; index {cost['index_bytes_per_record']:,.0f} bytes per record")]))
    c.print(methods_table(report))
    c.print(shares_table(report))
    c.print(answers_table(report))


def eval_command(ctx: typer.Context,
                 facts: Annotated[Path, typer.Argument(help="Facts file: one JSON object a line, {id, owner, "
                                                            "paraphrases, question, answer}.", dir_okay=False)],
                 extra: Annotated[Path | None, typer.Option("--extra", help="Extra records that teach no fact: "
                                                            "{owner, text} a line.", dir_okay=False)] = None,
                 work_dir: Annotated[Path | None, typer.Option("--work-dir", help="Where the chain, adapter and "
                                                               "indexes go (emptied first; default "
                                                               "HOME/attribution-eval).", file_okay=False)] = None,
                 base: Annotated[str, typer.Option("--base", help="`smollm2` or a model directory.")] = "smollm2",
                 epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes over the records.")] = 8,
                 lr: Annotated[float, typer.Option("--lr", help="AdamW peak learning rate.")] = 5e-3,
                 rank: Annotated[int, typer.Option("--rank", min=1, help="LoRA rank.")] = 8,
                 batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Records per step.")] = 2,
                 checkpoints: Annotated[int, typer.Option("--checkpoints", min=1, help="Checkpoints the influence "
                                                          "signal and TRAK ensemble over.")] = 2,
                 k: Annotated[int, typer.Option("--k", min=8, help="Projection dimension (engine and TRAK).")] = 2048,
                 top_layers: Annotated[int | None, typer.Option(
                     "--top-layers", min=0, help="The engine differentiates the LoRA tensors of the last N blocks "
                     "only (0: all; default: the engine's).", show_default=False)] = None,
                 max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Longest answer.")] = 40,
                 seed: Annotated[int, typer.Option("--seed", min=0, help="Training and projection seed.")] = 0,
                 trak: Annotated[bool, typer.Option("--trak/--no-trak", help="Run the TRAK baseline (about as "
                                                    "costly as building the index).")] = True,
                 threads: Annotated[int | None, typer.Option("--threads", min=1, help="Torch threads (default: "
                                                             "torch's); 1 is steadier on a busy shared machine.")]
                 = None, ray: RayOpt = None) -> None:
    """Run the whole attribution loop on a facts file and compare the engine with BM25 and TRAK."""
    from ailedger.attribution.evaluate import EvalConfig, run_eval
    from ailedger.attribution.facts import read_extra, read_facts
    from ailedger.modules import default_runtime

    s = settings(ctx)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    found = read_facts(facts)
    more = read_extra(extra) if extra is not None else []
    cfg = EvalConfig(base=base, rank=rank, alpha=2 * rank, lr=lr, epochs=epochs, batch_size=batch_size,
                     seed=seed, checkpoints=checkpoints, k=k, top_layers=top_layers, max_answer_tokens=max_tokens,
                     trak=trak)
    if not 0 < lr < 1 or k % 4:
        raise LedgerError(errors.BAD_ARGUMENT, "--lr must lie in (0, 1) and --k be a multiple of 4")
    try:
        with cluster_for(ray) as cluster, stage_bars(s) as on_stage:
            report = run_eval(found, more, work_dir or s.home / "attribution-eval", default_runtime(), cfg, on_stage,
                              cluster=cluster)
    except KeyboardInterrupt:
        raise LedgerError(errors.INTERRUPTED, "the evaluation stopped; run it again (it starts afresh)") from None
    emit(s, report, lambda c: render(c, report))
