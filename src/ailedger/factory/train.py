"""ModelFactory's trainer: LoRA on a Datanet snapshot, deterministic, resumable, with provenance.

Determinism: the LoRA initialisation and dropout draw from torch's global generator seeded with
`spec.seed`; the data order is a function of (seed, step) (see `data.Order`). A checkpoint stores the
adapter, AdamW's moments, the learning-rate schedule and the generator state, so a run resumed from
it continues bit for bit as if never stopped. An interrupt (Ctrl-C) is caught between steps, never
inside one: the step in flight finishes, a checkpoint is written, and `LedgerError(INTERRUPTED)`
says how to resume.

The result is an adapter in safetensors plus a model card naming everything a ledger entry needs:
the base model's weights hash, the Datanet name/version/root, the hyper-parameters and their hash,
the steps, the final loss and the adapter hash, and how the run went: the schedule as resolved (the
warm-up steps, the rate of every step) and what the loss looked at (which chat records learnt only
their assistant turns, which fell back to every token, how many tokens were supervised).

What is learnt: plain-text records learn every token; chat records learn their assistant turns
(`loss_on="assistant"`, `chat.py`). The rate warms up and decays (`schedule.py`). A batch in which
no token is supervised (every assistant turn cut away by `max_len`) makes no update: its loss
would be 0/0; it is recorded as 0.0 and listed in the card's `loss.empty_steps`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch.optim.lr_scheduler import LambdaLR

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory import checkpoints, schedule
from ailedger.factory.basemodel import BaseModel
from ailedger.factory.data import LOSS_ON, Example, Order, collate, encode, records_hash, supervised
from ailedger.factory.tensors import read_header, tensors_hash

StepCallback = Callable[[int, int, float], None]  # (step, total steps, loss of that step)
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
CARD_FILE = "model_card.json"
MIN_KEEP = 3
# The settings added after the first adapters were published, at the values that train as those did.
# A spec holding all of them serializes without them, so its hash is the hash it always had;
# a document without them reads back as them.
LEGACY: dict[str, Any] = {"schedule": "constant", "warmup_steps": None, "min_lr_ratio": 0.1, "loss_on": "all"}


@dataclass(frozen=True)
class TrainSpec:
    """Everything that decides the adapter's weights; `hyperparams_hash` commits to all of it."""

    base: str
    datanet: str
    version: int
    snapshot_root: str
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    lr: float = 2e-4
    epochs: int = 1
    batch_size: int = 8
    max_len: int = 256
    seed: int = 0
    checkpoint_every: int = 50
    target_modules: tuple[str, ...] = field(default=DEFAULT_TARGETS)
    schedule: str = "cosine"  # constant | cosine | linear (schedule.py)
    warmup_steps: int | None = None  # None: 5% of the steps for a decaying schedule on runs over 20 steps
    min_lr_ratio: float = 0.1  # where a decaying schedule ends, as a fraction of lr
    loss_on: str = "assistant"  # chat records: "assistant" turns only, or "all" tokens (plain text: always all)

    def validate(self) -> None:
        checks = {"rank": 1 <= self.rank <= 1024, "alpha": self.alpha > 0, "dropout": 0 <= self.dropout < 1,
                  "lr": 0 < self.lr < 1, "epochs": 1 <= self.epochs <= 10_000,
                  "batch_size": 1 <= self.batch_size <= 4096, "max_len": 2 <= self.max_len <= 1 << 20,
                  "seed": 0 <= self.seed < 1 << 63, "checkpoint_every": self.checkpoint_every >= 1,
                  "target_modules": bool(self.target_modules), "schedule": self.schedule in schedule.SCHEDULES,
                  "warmup_steps": self.warmup_steps is None or 0 <= self.warmup_steps <= 10**9,
                  "min_lr_ratio": 0 <= self.min_lr_ratio <= 1, "loss_on": self.loss_on in LOSS_ON}
        bad = [k for k, ok in checks.items() if not ok]  # NaN fails every comparison
        if bad:
            raise LedgerError(errors.BAD_TRAIN_SPEC, ", ".join(bad))

    def to_json(self) -> str:
        d = {**asdict(self), "target_modules": list(self.target_modules)}
        if all(d[k] == v for k, v in LEGACY.items()):
            d = {k: v for k, v in d.items() if k not in LEGACY}
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TrainSpec:
        d = json.loads(text)
        return cls(**{**LEGACY, **d, "target_modules": tuple(d.get("target_modules", DEFAULT_TARGETS))})

    def hyperparams_hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    adapter_hash: str
    steps: int
    final_loss: float
    losses: list[float]
    card: dict[str, Any]


def adapter_hash(directory: Path | str) -> str:
    """The hash an adapter is published under: its LoRA tensors (as `weights_hash` for bases)."""
    return tensors_hash(read_header(Path(directory) / checkpoints.ADAPTER_FILE))


class _StopFlag:
    """Turns Ctrl-C into a request that the loop honours between steps."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: object) -> None:
            self.requested = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def train(spec: TrainSpec, records: Sequence[dict[str, Any]], base: BaseModel, out_dir: Path | str,
          on_step: StepCallback | None = None, resume: bool = True, keep: int | None = None,
          until: int | None = None) -> TrainResult:
    """Fine-tune a LoRA adapter of `base` on `records` into `out_dir`, resuming from its checkpoints.

    `base` is left untouched (the adapter is trained on a copy). `resume=False` discards any
    checkpoints in `out_dir`. `keep` bounds how many checkpoints stay on disk (all by default, at
    least 3). `until` stops after that step (a spot check re-running one segment of a run,
    provider/spotcheck.py): a checkpoint is written there and returned as the result (its
    `out_dir`), with no final adapter and no card.
    """
    spec.validate()
    if keep is not None and keep < MIN_KEEP:
        raise LedgerError(errors.BAD_TRAIN_SPEC, f"keep={keep}: at least {MIN_KEEP} checkpoints are kept")
    out = Path(out_dir)
    ckpt_root = out / "checkpoints"
    examples = encode(records, base.tokenizer, spec.max_len, spec.loss_on)
    if not examples:
        raise LedgerError(errors.NO_TRAINING_RECORDS, f"{len(records)} records, none with text")
    if not any(e.supervised for e in examples):
        raise LedgerError(errors.NO_TRAINING_RECORDS, f"{len(records)} records, no token to learn within "
                                                      f"max_len {spec.max_len} (loss on {spec.loss_on})")
    pad_id = base.tokenizer.pad_token_id
    pad = pad_id if isinstance(pad_id, int) else int(base.tokenizer.eos_token_id or 0)
    run_id = hashlib.sha256(json.dumps([spec.to_json(), base.info.weights_hash, records_hash(records)])
                            .encode()).hexdigest()

    torch.manual_seed(spec.seed)
    lora = LoraConfig(r=spec.rank, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                      target_modules=list(spec.target_modules), bias="none", task_type="CAUSAL_LM")
    model: PeftModel = get_peft_model(copy.deepcopy(base.model), lora)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=spec.lr,
                                  weight_decay=0.0)
    order = Order(len(examples), spec.batch_size, spec.seed)
    total = spec.epochs * order.steps_per_epoch
    warmup = schedule.warmup_steps(spec.schedule, spec.warmup_steps, total)
    rates = schedule.scheduler(optimizer, spec.schedule, total, warmup, spec.min_lr_ratio)
    step, losses, lrs, empty = 0, [], [], []

    if not resume:
        shutil.rmtree(ckpt_root, ignore_errors=True)
    existing = checkpoints.listing(ckpt_root)
    if existing:
        last = existing[-1]
        if last.state.get("run_id") != run_id:
            raise LedgerError(errors.CHECKPOINT_MISMATCH, f"{last.path} belongs to run {last.state.get('run_id')}")
        step, losses = last.step, list(last.state["losses"])
        lrs, empty = list(last.state.get("lrs", [spec.lr] * step)), list(last.state.get("empty_steps", []))
        if not checkpoints.restore(last, model, optimizer, rates):
            _set_step(rates, step)
        if rates.last_epoch != step:
            raise LedgerError(errors.CHECKPOINT_MISMATCH, f"{last.path}: schedule at step {rates.last_epoch}, "
                                                          f"checkpoint at step {step}")

    def checkpoint() -> Path:
        state = {"run_id": run_id, "losses": losses, "lrs": lrs, "empty_steps": empty}
        return checkpoints.save(model, optimizer, rates, ckpt_root, step, state, keep)

    stop = _StopFlag()
    saved = step if existing else -1
    end = total if until is None else min(max(until, 0), total)
    try:
        with stop.installed():
            while step < end:
                batch = collate([examples[i] for i in order.batch(step)], pad)
                lrs.append(float(optimizer.param_groups[0]["lr"]))
                if supervised(batch):
                    loss = model(**batch).loss
                    loss.backward()
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    losses.append(float(loss.detach()))
                else:  # nothing to learn in this batch: no update, and no 0/0 loss
                    empty.append(step)
                    losses.append(0.0)
                with warnings.catch_warnings():  # an empty first step steps the schedule before any optimizer step
                    warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()`"), UserWarning)
                    rates.step()
                step += 1
                if step % spec.checkpoint_every == 0 or step in (total, end):
                    checkpoint()
                    saved = step
                if on_step is not None:
                    try:
                        on_step(step, total, losses[-1])
                    except KeyboardInterrupt:
                        stop.requested = True
                if stop.requested and step < total:
                    where = checkpoint() if saved != step else ckpt_root / f"{checkpoints.PREFIX}{step:06d}"
                    raise LedgerError(errors.INTERRUPTED, f"stopped after step {step} of {total}; checkpoint {where}")
    except KeyboardInterrupt:  # raised inside a step (no signal handler here): that step is lost, not torn into
        raise LedgerError(errors.INTERRUPTED, f"stopped during step {step + 1} of {total}; the last checkpoint "
                                              "stays") from None
    if step < total:  # stopped at `until`: that checkpoint is the result
        at = ckpt_root / f"{checkpoints.PREFIX}{step:06d}"
        if saved != step:
            at = checkpoint()
        return TrainResult(at, adapter_hash(at), step, losses[-1] if losses else 0.0, losses, {})
    run = {"schedule": {"kind": spec.schedule, "warmup_steps": warmup, "total_steps": total,
                        "min_lr_ratio": spec.min_lr_ratio, "lrs": lrs},
           "loss": {**_loss_summary(spec.loss_on, examples), "empty_steps": empty}}
    return _finish(spec, base, model, out, losses, order.steps_per_epoch, examples, run, run_id, ckpt_root)


def _set_step(rates: LambdaLR, step: int) -> None:
    """Put a schedule at `step` (for checkpoints written before schedules were saved in them)."""
    rates.last_epoch = step
    for group, base_lr, factor in zip(rates.optimizer.param_groups, rates.base_lrs, rates.lr_lambdas, strict=True):
        group["lr"] = base_lr * factor(step)


def _loss_summary(loss_on: str, examples: list[Example]) -> dict[str, Any]:
    """What the loss looked at, for the card: the chat records' masking, the supervised tokens."""
    return {"loss_on": loss_on, "chat_records": sum(e.chat for e in examples),
            "assistant_only_records": sum(e.assistant_only for e in examples),
            "whole_sequence_fallback_records": sum(e.fallback for e in examples),
            "unsupervised_records": sum(not e.supervised for e in examples),
            "supervised_tokens": sum(e.supervised for e in examples)}


def _finish(spec: TrainSpec, base: BaseModel, model: PeftModel, out: Path, losses: list[float],
            steps_per_epoch: int, examples: list[Example], run: dict[str, Any], run_id: str,
            ckpt_root: Path) -> TrainResult:
    """Write the final adapter and its model card (the card last: its presence means complete)."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".final.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        checkpoints.save_adapter(model, tmp)
        for name in (checkpoints.ADAPTER_FILE, checkpoints.ADAPTER_CONFIG):
            (tmp / name).replace(out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    first = len(losses) - steps_per_epoch
    empty = set(run["loss"]["empty_steps"])
    tail = [loss for i, loss in enumerate(losses) if i >= first and i not in empty] or [0.0]
    card = {
        "kind": "ailedger/adapter-card/v1",
        "base": {k: v for k, v in base.info.to_json().items() if k != "path"},
        "datanet": {"name": spec.datanet, "version": spec.version, "root": spec.snapshot_root},
        "hyperparams": json.loads(spec.to_json()),
        "hyperparams_hash": spec.hyperparams_hash(),
        "steps": len(losses), "records": len(examples), "tokens": sum(len(e.ids) for e in examples),
        "final_loss": sum(tail) / len(tail), "losses": losses, **run,
        "checkpoints": [c.path.name for c in checkpoints.listing(ckpt_root)],
        "adapter_hash": adapter_hash(out), "run_id": run_id,
    }
    _write_atomic(out / "README.md", _card_markdown(card))
    _write_atomic(out / CARD_FILE, json.dumps(card, indent=2, sort_keys=True) + "\n")
    return TrainResult(out, card["adapter_hash"], len(losses), card["final_loss"], losses, card)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def _card_markdown(card: dict[str, Any]) -> str:
    hp = card["hyperparams"]
    rows = "\n".join(f"| {k} | `{v}` |" for k, v in sorted(hp.items()))
    return (f"# LoRA adapter on {card['base']['name']}\n\n"
            f"- adapter hash: `{card['adapter_hash']}`\n"
            f"- base model: {card['base']['name']} ({card['base']['architecture']}), weights hash "
            f"`{card['base']['weights_hash']}`\n"
            f"- trained on Datanet `{card['datanet']['name']}` version {card['datanet']['version']}, root "
            f"`{card['datanet']['root']}` ({card['records']} records, {card['tokens']} tokens)\n"
            f"- {card['steps']} steps, final loss {card['final_loss']:.4f}\n"
            f"- learning rate: {_schedule_line(card)}\n"
            f"- loss on: {_loss_line(card)}\n"
            f"- hyper-parameters hash `{card['hyperparams_hash']}`\n\n| setting | value |\n| --- | --- |\n{rows}\n")


def _schedule_line(card: dict[str, Any]) -> str:
    sched = card["schedule"]
    decay = "" if sched["kind"] == "constant" else f" to {sched['min_lr_ratio']} of it"
    return (f"{sched['kind']}{decay} over {sched['total_steps']} steps after {sched['warmup_steps']} warm-up steps, "
            f"peak `{card['hyperparams']['lr']}`")


def _loss_line(card: dict[str, Any]) -> str:
    loss = card["loss"]
    where = ("the assistant's turns of chat records" if loss["loss_on"] == "assistant"
             else "every token of chat records")
    return (f"{where}, every token of plain text ({loss['assistant_only_records']} of {loss['chat_records']} chat "
            f"records assistant-only, {loss['whole_sequence_fallback_records']} fell back to every token: template "
            f"not prefix-stable; {loss['supervised_tokens']} supervised tokens)")
