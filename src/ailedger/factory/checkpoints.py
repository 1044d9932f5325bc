"""Training checkpoints: adapter weights, optimizer, random state, step, written atomically.

A checkpoint directory `checkpoints/step-000120/` holds `adapter_model.safetensors` and
`adapter_config.json` (a loadable PEFT adapter: the attribution engine replays gradients against
these), `optimizer.pt`, `scheduler.pt` (the learning-rate schedule's state), `rng.pt` and
`state.json` (step, data cursor, losses and rates so far, the run id that ties it to one base, one
dataset and one set of hyper-parameters). It is written in a temporary
directory and renamed, so a checkpoint either exists whole or not at all; `state.json` is written
last inside it.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch.optim.lr_scheduler import LRScheduler

from ailedger.core import errors
from ailedger.core.errors import LedgerError

PREFIX = "step-"
ADAPTER_FILE = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
SCHEDULER_FILE = "scheduler.pt"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int
    state: dict[str, Any]


def save_adapter(model: PeftModel, directory: Path) -> None:
    """Write the adapter's LoRA tensors and config (PEFT's own layout, loadable by `PeftModel`)."""
    tensors = {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(tensors, str(directory / ADAPTER_FILE), metadata={"format": "pt"})
    model.peft_config["default"].save_pretrained(str(directory))


def save(model: PeftModel, optimizer: torch.optim.Optimizer, scheduler: LRScheduler, root: Path, step: int,
         state: dict[str, Any], keep: int | None = None) -> Path:
    """Write checkpoint `step` under `root` (atomically), then drop the oldest beyond `keep`."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:06d}"
    tmp = root / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_adapter(model, tmp)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / SCHEDULER_FILE)
        torch.save(torch.get_rng_state(), tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps({**state, "step": step, "cursor": step}, sort_keys=True))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if keep is not None:
        for old in listing(root)[:-keep]:
            shutil.rmtree(old.path, ignore_errors=True)
    return final


def listing(root: Path) -> list[Checkpoint]:
    """The complete checkpoints under `root`, oldest first (half-written temporaries are ignored)."""
    found = []
    if root.is_dir():
        for d in root.iterdir():
            if not d.name.startswith(PREFIX) or not (d / "state.json").is_file():
                continue
            try:
                state = json.loads((d / "state.json").read_text())
            except ValueError:
                continue
            found.append(Checkpoint(d, int(state["step"]), state))
    return sorted(found, key=lambda c: c.step)


def restore(ckpt: Checkpoint, model: PeftModel, optimizer: torch.optim.Optimizer, scheduler: LRScheduler) -> bool:
    """Put the adapter weights, optimizer moments, schedule and random state back as they were at `ckpt`.

    Returns False when the checkpoint has no schedule state (it was written before schedules
    existed, so its run trained at a constant rate): the caller sets the schedule to the step.
    """
    try:
        set_peft_model_state_dict(model, load_file(str(ckpt.path / ADAPTER_FILE)))
        optimizer.load_state_dict(torch.load(ckpt.path / "optimizer.pt", weights_only=True))
        has_schedule = (ckpt.path / SCHEDULER_FILE).is_file()
        if has_schedule:
            scheduler.load_state_dict(torch.load(ckpt.path / SCHEDULER_FILE, weights_only=True))
        torch.set_rng_state(torch.load(ckpt.path / "rng.pt", weights_only=True))
    except (OSError, RuntimeError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        raise LedgerError(errors.CHECKPOINT_MISMATCH, f"{ckpt.path} cannot be restored ({exc})") from exc
    return has_schedule
