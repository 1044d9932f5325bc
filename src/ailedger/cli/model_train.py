"""`ailedger model train`: fine-tune a LoRA adapter on a Datanet version as a compute job on the ledger.

The flow lives in `factory/job.py` (`run_training_job`); this file parses the options, unlocks the two
keys, opens the backend and draws the progress bars. The poster (`--from`) escrows the budget and
accepts the result; the worker (`--worker`, required) claims the job, trains and delivers. They
must be different keys: the market refuses a poster claiming its own job (`own_job`), and the
worker needs `market_worker_min_stake` bonded (`ailedger tx stake --from WORKER`). Both keys are
unlocked with the same passphrase source (--passphrase-file or AILEDGER_PASSPHRASE). What the loss
looks at (`--loss-on`) and the learning-rate schedule (`--schedule`, `--warmup-steps`,
`--min-lr-ratio`) are hyper-parameters like the rest (docs/models.md, "Training an adapter").

Interrupted (Ctrl-C), the command stops after the step in flight and writes a checkpoint; the job
stays claimed. Running the same command again resumes the same job (its id is in OUT/job.json) from
the last checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ailedger.cli.backend import DataDirOpt, NodeOpt, open_backend
from ailedger.cli.cluster_opt import RayOpt, cluster_for
from ailedger.cli.keys import PassphraseFile
from ailedger.cli.output import Settings, emit, kv_table, settings, units
from ailedger.cli.tx import FeeOpt, FromOpt, unlock_key
from ailedger.core import errors
from ailedger.core.amounts import parse_units
from ailedger.core.errors import LedgerError

StepCb = Callable[[int, int, float], None]
StageCb = Callable[[str, int, int | None], None]


class Schedule(StrEnum):  # factory/schedule.py SCHEDULES
    constant = "constant"
    cosine = "cosine"
    linear = "linear"


class LossOn(StrEnum):  # factory/data.py LOSS_ON
    assistant = "assistant"
    all = "all"


@contextmanager
def train_bars(s: Settings) -> Iterator[tuple[StepCb, StageCb]]:
    """One Rich display on stderr (none under --json): a bar per stage and the training bar with its loss."""
    columns = (TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=s.err, disable=s.json) as bar:
        tasks: dict[str, Any] = {}

        def task(name: str, total: int | None) -> Any:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total, loss="")
            return tasks[name]

        def on_step(step: int, total: int, loss: float) -> None:
            bar.update(task("train", total), completed=step, total=total, loss=f"loss {loss:.4f}")

        def on_stage(stage: str, done: int, total: int | None) -> None:
            bar.update(task(stage, total), completed=done, total=total)

        yield on_step, on_stage


def _render(c: Console, d: dict[str, Any]) -> None:
    c.print(kv_table("training job", [
        ("job", f"{d['job_id']} ({d['status']})"), ("adapter", d["adapter_dir"]), ("adapter hash", d["adapter_hash"]),
        ("base weights", d["base_weights_hash"]),
        ("datanet", f"{d['datanet']} v{d['version']}, root {d['snapshot_root']} ({d['records']} records)"),
        ("hyper-parameters", d["hyperparams_hash"]), ("steps", d["steps"]), ("final loss", f"{d['final_loss']:.4f}"),
        ("budget paid", f"{units(d['budget_paid'])} of {units(d['budget'])} to {d['worker']}"),
        ("resumed", d["resumed"])]))
    c.print(f"next: ailedger model publish NAME --from KEY --base BASE --adapter-dir {d['adapter_dir']} "
            f"--datanet {d['datanet']} --version {d['version']} --price P --job {d['job_id']}")


def train_cmd(ctx: typer.Context, sender: FromOpt,
              worker: Annotated[str, typer.Option(
                  "--worker", help="Key that claims the job, trains and is paid (not --from: a poster may not "
                  "claim its own job); needs market_worker_min_stake bonded.")],
              datanet: Annotated[str, typer.Option("--datanet", help="Datanet to train on.")],
              version: Annotated[int, typer.Option("--version", help="Its version (snapshot).", min=1)],
              out: Annotated[Path, typer.Option("--out", help="Output directory: data, checkpoints, adapter, card, "
                                                              "job.json (rerun to resume).", file_okay=False)],
              budget: Annotated[str, typer.Option("--budget", help="Job budget in units, escrowed from --from.")],
              base: Annotated[str, typer.Option("--base", help="`smollm2` or a Hugging Face model directory.")]
              = "smollm2",
              rank: Annotated[int, typer.Option("--rank", help="LoRA rank.")] = 8,
              alpha: Annotated[int, typer.Option("--alpha", help="LoRA alpha.")] = 16,
              dropout: Annotated[float, typer.Option("--dropout", help="LoRA dropout.")] = 0.05,
              epochs: Annotated[int, typer.Option("--epochs", help="Passes over the records.")] = 1,
              lr: Annotated[float, typer.Option("--lr", help="AdamW learning rate (the peak, after warm-up).")]
              = 2e-4,
              schedule: Annotated[Schedule, typer.Option("--schedule", help="Learning rate after warm-up: decays "
                                                         "to --min-lr-ratio of --lr (cosine, linear) or stays.")]
              = Schedule.cosine,
              warmup_steps: Annotated[int | None, typer.Option(
                  "--warmup-steps", min=0, help="Linear warm-up steps (default: 5% of the steps when there are "
                  "over 20, none for constant).", show_default=False)] = None,
              min_lr_ratio: Annotated[float, typer.Option("--min-lr-ratio", min=0.0, max=1.0,
                                                          help="Where a decaying schedule ends, as a fraction "
                                                               "of --lr.")] = 0.1,
              loss_on: Annotated[LossOn, typer.Option("--loss-on", help="Chat records learn the assistant's turns "
                                                      "only, or all tokens (plain text learns all).")]
              = LossOn.assistant,
              batch_size: Annotated[int, typer.Option("--batch-size", help="Records per step.")] = 8,
              max_len: Annotated[int, typer.Option("--max-len", help="Tokens per record (longer are cut).")] = 256,
              seed: Annotated[int, typer.Option("--seed", help="Seed of initialisation, dropout and order.")] = 0,
              checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Steps between "
                                                                                      "checkpoints.")] = 50,
              deadline: Annotated[int, typer.Option("--deadline", help="Blocks from posting until the job's "
                                                                       "deadline.", min=1)] = 1000,
              ray: RayOpt = None, fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
              passphrase_file: PassphraseFile = None) -> None:
    """Train a LoRA adapter on a Datanet version as a compute job: post (budget escrowed), claim, train, deliver,
    accept (budget paid to the worker). Rerun the same command to resume after an interrupt."""
    from ailedger.factory.job import run_training_job
    from ailedger.factory.train import TrainSpec

    s = settings(ctx)
    spec = TrainSpec(base=base, datanet=datanet, version=version, snapshot_root="", rank=rank, alpha=alpha,
                     dropout=dropout, lr=lr, epochs=epochs, batch_size=batch_size, max_len=max_len, seed=seed,
                     checkpoint_every=checkpoint_every, schedule=schedule.value, warmup_steps=warmup_steps,
                     min_lr_ratio=min_lr_ratio, loss_on=loss_on.value)
    spec.validate()
    amount = parse_units(budget)
    fee_units = parse_units(fee) if fee is not None else None
    poster_key = unlock_key(s, sender, passphrase_file)
    worker_key = unlock_key(s, worker, passphrase_file)
    say: Callable[[str], None] = (lambda line: None) if s.json else (lambda line: s.err.print(line, markup=False))
    try:
        with open_backend(s, node, data_dir, write=True) as backend, cluster_for(ray) as cluster, \
                train_bars(s) as (on_step, on_stage):
            result = run_training_job(backend, poster_key, worker_key, spec, out, amount, deadline, on_step=on_step,
                                      on_event=say, on_stage=on_stage, fee=fee_units, cluster=cluster)
    except KeyboardInterrupt:
        raise LedgerError(errors.INTERRUPTED, f"rerun the same command to resume (job id in {out}/job.json)") from None
    doc = result.to_json()
    emit(s, doc, lambda c: _render(c, doc))
