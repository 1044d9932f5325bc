"""ModelFactory's trainer: LoRA on a Datanet snapshot, deterministic, resumable, with provenance.

Determinism: the LoRA initialisation and dropout draw from torch's global generator seeded with
`spec.seed`; the data order is a function of (seed, step) (see `data.Order`). A checkpoint stores the
adapter, AdamW's moments and the generator state, so a run resumed from it continues bit for bit as
if never stopped. An interrupt (Ctrl-C) is caught between steps, never inside one: the step in
flight finishes, a checkpoint is written, and `LedgerError(INTERRUPTED)` says how to resume.

The result is an adapter in safetensors plus a model card naming everything a ledger entry needs:
the base model's weights hash, the Datanet name/version/root, the hyper-parameters and their hash,
the steps, the final loss and the adapter hash.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory import checkpoints
from ailedger.factory.basemodel import BaseModel
from ailedger.factory.data import Order, collate, encode, records_hash
from ailedger.factory.tensors import read_header, tensors_hash

StepCallback = Callable[[int, int, float], None]  # (step, total steps, loss of that step)
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
CARD_FILE = "model_card.json"
MIN_KEEP = 3


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

    def validate(self) -> None:
        checks = {"rank": 1 <= self.rank <= 1024, "alpha": self.alpha > 0, "dropout": 0 <= self.dropout < 1,
                  "lr": 0 < self.lr < 1, "epochs": 1 <= self.epochs <= 10_000,
                  "batch_size": 1 <= self.batch_size <= 4096, "max_len": 2 <= self.max_len <= 1 << 20,
                  "seed": 0 <= self.seed < 1 << 63, "checkpoint_every": self.checkpoint_every >= 1,
                  "target_modules": bool(self.target_modules)}
        bad = [k for k, ok in checks.items() if not ok]
        if bad or not math.isfinite(self.lr):
            raise LedgerError(errors.BAD_TRAIN_SPEC, ", ".join(bad or ["lr"]))

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "target_modules": list(self.target_modules)}, sort_keys=True,
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TrainSpec:
        d = json.loads(text)
        return cls(**{**d, "target_modules": tuple(d.get("target_modules", DEFAULT_TARGETS))})

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
          on_step: StepCallback | None = None, resume: bool = True, keep: int | None = None) -> TrainResult:
    """Fine-tune a LoRA adapter of `base` on `records` into `out_dir`, resuming from its checkpoints.

    `base` is left untouched (the adapter is trained on a copy). `resume=False` discards any
    checkpoints in `out_dir`. `keep` bounds how many checkpoints stay on disk (all by default, at
    least 3).
    """
    spec.validate()
    if keep is not None and keep < MIN_KEEP:
        raise LedgerError(errors.BAD_TRAIN_SPEC, f"keep={keep}: at least {MIN_KEEP} checkpoints are kept")
    out = Path(out_dir)
    ckpt_root = out / "checkpoints"
    seqs = encode(records, base.tokenizer, spec.max_len)
    if not seqs:
        raise LedgerError(errors.NO_TRAINING_RECORDS, f"{len(records)} records, none with text")
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
    order = Order(len(seqs), spec.batch_size, spec.seed)
    total = spec.epochs * order.steps_per_epoch
    step, losses = 0, []

    if not resume:
        shutil.rmtree(ckpt_root, ignore_errors=True)
    existing = checkpoints.listing(ckpt_root)
    if existing:
        last = existing[-1]
        if last.state.get("run_id") != run_id:
            raise LedgerError(errors.CHECKPOINT_MISMATCH, f"{last.path} belongs to run {last.state.get('run_id')}")
        checkpoints.restore(last, model, optimizer)
        step, losses = last.step, list(last.state["losses"])

    def checkpoint() -> Path:
        return checkpoints.save(model, optimizer, ckpt_root, step, {"run_id": run_id, "losses": losses}, keep)

    stop = _StopFlag()
    saved = step if existing else -1
    try:
        with stop.installed():
            while step < total:
                batch = collate([seqs[i] for i in order.batch(step)], pad)
                loss = model(**batch).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                losses.append(float(loss.detach()))
                if step % spec.checkpoint_every == 0 or step == total:
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
    return _finish(spec, base, model, out, losses, order.steps_per_epoch, len(seqs),
                   sum(len(s) for s in seqs), run_id, ckpt_root)


def _finish(spec: TrainSpec, base: BaseModel, model: PeftModel, out: Path, losses: list[float],
            steps_per_epoch: int, n_records: int, n_tokens: int, run_id: str, ckpt_root: Path) -> TrainResult:
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
    tail = losses[-steps_per_epoch:]
    card = {
        "kind": "ailedger/adapter-card/v1",
        "base": {k: v for k, v in base.info.to_json().items() if k != "path"},
        "datanet": {"name": spec.datanet, "version": spec.version, "root": spec.snapshot_root},
        "hyperparams": json.loads(spec.to_json()),
        "hyperparams_hash": spec.hyperparams_hash(),
        "steps": len(losses), "records": n_records, "tokens": n_tokens,
        "final_loss": sum(tail) / len(tail), "losses": losses,
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
            f"- hyper-parameters hash `{card['hyperparams_hash']}`\n\n| setting | value |\n| --- | --- |\n{rows}\n")
