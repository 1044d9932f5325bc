"""`ailedger attribution lds`: the linear datamodeling score (LDS) of the engine and of TRAK, from the CLI.

Why a command: the LDS asks the counterfactual question the payouts rest on (do a method's scores
predict what removing records does to an answer?) and until now only `ailedger bench attribution`
and the tests could run it. The work is `attribution.lds.run_lds` (a generated Datanet, the tiny
model fine-tuned on it, the engine's and TRAK's scores, then M subset retrainings, as Ray tasks with
`--ray`, with the same outcomes bit for bit); this file checks the options, draws a Rich bar per
stage on stderr and prints the figures as tables, or as one JSON document under `--json`. How to
read the figures is in docs/attribution-eval.md, part (c).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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

LABELS = {"engine": "this engine", "influence": "influence alone", "trak": "TRAK"}
RESULT = "lds.json"  # run_lds writes the subsets' masks and outcomes there


@contextmanager
def _work_dir(given: Path | None) -> Iterator[Path]:
    """Where run_lds works: `given`, kept (run_lds refuses one it did not make); else a temporary one, removed."""
    if given is None:
        with tempfile.TemporaryDirectory(prefix="ailedger-lds-") as tmp:
            yield Path(tmp) / "lds"
        return
    yield given


def figures_table(report: dict[str, Any]) -> Table:
    table = Table(title=Text("LDS: Spearman correlation of predicted and measured subset effects (higher is better)"),
                  title_justify="left")
    for col in ("method", "held-out answers", "seen answers"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, value in report["lds"].items():
        table.add_row(LABELS.get(name, name), f"{value:.3f}", f"{report['lds_seen'][name]:.3f}")
    return table


def render(c: Console, report: dict[str, Any]) -> None:
    setup = report["setup"]
    facts = setup["targets"] * setup["paraphrases"]  # the fact records; the rest are stuffers
    c.print(figures_table(report))
    c.print(kv_table("setup", [
        ("model", setup["model"]),
        ("records", f"{setup['records']}: {setup['targets']} facts of {setup['owners']} owners x "
                    f"{setup['paraphrases']} paraphrases, {setup['records'] - facts} stuffer records"),
        ("targets", f"{setup['targets']} questions, each answered held-out and seen"),
        ("subsets", f"{setup['subsets']} of {setup['kept_per_subset']} records each (fraction {setup['fraction']})"),
        ("fine-tune", f"rank {setup['rank']}, lr {setup['lr']}, {setup['epochs']} epochs, batch {setup['batch_size']}, "
                      f"{setup['checkpoints']} checkpoints, k {setup['k']}, seed {setup['seed']}"),
        ("time", f"full training {setup['full_train_s']:.1f} s, {setup['retrain_s_mean']:.2f} s per retraining"),
        ("work directory", f"{report['work_dir']} (masks and outcomes in {RESULT})" if report["work_dir"]
         else "temporary, removed (keep it with --work-dir)")]))


def lds_command(ctx: typer.Context,
                work_dir: Annotated[Path | None, typer.Option(
                    "--work-dir", help=f"Keep the run here ({RESULT} holds the subsets and their outcomes); emptied "
                    "first, so new, empty or an earlier run's. Default: a temporary directory, removed.",
                    file_okay=False)] = None,
                subsets: Annotated[int, typer.Option("--subsets", help="Random subsets retrained (at least "
                                                                       "2).")] = 50,
                fraction: Annotated[float, typer.Option("--fraction", help="Share of the records each subset "
                                                                           "keeps, in (0, 1).")] = 0.5,
                epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes over the records, for the full "
                                                    "model and every subset.")] = 12,
                owners: Annotated[int, typer.Option("--owners", min=1, help="Owners of the generated Datanet (2 facts "
                                                    "each, 3 paraphrases a fact).")] = 4,
                k: Annotated[int, typer.Option("--k", help="Projection dimension, for the engine and TRAK (a multiple "
                                                           "of 4, at least 8).")] = 2048,
                seed: Annotated[int, typer.Option("--seed", min=0, help="Data, training, projection and subset "
                                                                        "seed.")] = 0,
                trak: Annotated[bool, typer.Option("--trak/--no-trak", help="Score the TRAK baseline too.")] = True,
                threads: Annotated[int | None, typer.Option("--threads", min=1, help="Torch threads (default: "
                                                            "torch's); 1 is steadier on a busy shared machine.")]
                = None, ray: RayOpt = None) -> None:
    """Measure how well the engine's (and TRAK's) scores predict the effect of removing records (LDS)."""
    s = settings(ctx)
    if subsets < 2:
        raise LedgerError(errors.BAD_ARGUMENT, f"--subsets {subsets}: a rank correlation needs at least 2 subsets")
    if not 0 < fraction < 1:
        raise LedgerError(errors.BAD_ARGUMENT, f"--fraction {fraction} must lie in (0, 1)")
    if k < 8 or k % 4:
        raise LedgerError(errors.BAD_ARGUMENT, f"--k {k} must be a multiple of 4, at least 8")
    from ailedger.attribution.lds import LdsConfig, run_lds

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    cfg = LdsConfig(owners=owners, subsets=subsets, fraction=fraction, epochs=epochs, k=k, seed=seed, trak=trak)
    try:
        with _work_dir(work_dir) as work, cluster_for(ray) as cluster, stage_bars(s) as on_stage:
            report = run_lds(work, cfg, on_stage, cluster=cluster)
    except KeyboardInterrupt:
        raise LedgerError(errors.INTERRUPTED, "the LDS run stopped; run it again (it starts afresh)") from None
    report["work_dir"] = str(work_dir) if work_dir is not None else None
    emit(s, report, lambda c: render(c, report))
