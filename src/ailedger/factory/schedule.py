"""The learning-rate schedule: linear warm-up, then cosine or linear decay to a floor, or constant.

The rate of step `s` (0-based: the update that step makes) is `lr * multiplier(s)`:

- warm-up, `s < W`: `(s + 1) / (W + 1)`, rising towards the full rate, never zero (a step at rate 0
  would be wasted);
- then, with `p = (s - W) / (T - W)` the progress through the remaining steps (0 on the first):
  `cosine` gives `r + (1 - r) * (1 + cos(pi * p)) / 2`, `linear` gives `r + (1 - r) * (1 - p)`, and
  `constant` gives 1, where `r` is `min_lr_ratio`.

The multiplier is a pure function of the step, so the schedule's state is just the step it is at;
it is saved in every checkpoint all the same (`torch.optim.lr_scheduler.LambdaLR.state_dict`), so
a resumed run provably continues where it stopped.

By default (`warmup_steps=None`) a decaying schedule warms up over 5% of the steps, at least one,
when there are more than 20 steps, and not at all on shorter runs, whose first steps would be all
warm-up; `constant` does not warm up unless told to, which keeps it the schedule trained before
schedules existed.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

SCHEDULES = ("constant", "cosine", "linear")
WARMUP_FRACTION = 0.05
WARMUP_MIN_TOTAL = 20  # runs of at most this many steps get no automatic warm-up


def warmup_steps(schedule: str, requested: int | None, total: int) -> int:
    """Warm-up steps of a run of `total` steps: `requested` (at most `total`), or the default above."""
    if requested is not None:
        return min(requested, total)
    if schedule == "constant" or total <= WARMUP_MIN_TOTAL:
        return 0
    return max(1, round(WARMUP_FRACTION * total))


def multiplier(step: int, schedule: str, total: int, warmup: int, min_lr_ratio: float) -> float:
    """The factor on the base learning rate at `step` (see the module docstring)."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    decay = 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule == "cosine" else 1.0 - progress
    return min_lr_ratio + (1.0 - min_lr_ratio) * decay


def scheduler(optimizer: torch.optim.Optimizer, schedule: str, total: int, warmup: int,
              min_lr_ratio: float) -> LambdaLR:
    """A LambdaLR at step 0 (the optimizer's rates set for the first step)."""
    return LambdaLR(optimizer, lambda step: multiplier(step, schedule, total, warmup, min_lr_ratio))
