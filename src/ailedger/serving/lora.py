"""The LoRA room: one base projection for the whole batch, plus each row's own low-rank delta.

Every adapted projection keeps its adapters stacked in slots: `a[slot]` is (in, max_rank),
`b[slot]` is (max_rank, out), `scale[slot]` is alpha/r. Slot 0 is all zeros and means "no adapter".
Before a forward pass the caller says which slot each batch row uses (`LoRASlots.select`); each
layer then runs the base `nn.Linear` once over the whole batch and adds `x @ a[row] @ b[row] * scale`
by gathering the rows' matrices and running two batched matmuls. Nothing loops over requests and no
weights are swapped or merged, so any mix of adapters costs one pass.

Ranks below `max_rank` are zero-padded: the padded columns of `x @ a` are exact zeros and add
nothing to `@ b`, so a rank-4 adapter in a rank-8 slot computes exactly what it computes alone.

Two kernels compute the delta. `gather` (the default) indexes a and b by row and calls `torch.bmm`;
`segment` groups rows by slot and runs one pair of matmuls per distinct slot present. On CPU with
the tiny model and with SmolLM2-135M, gather was clearly faster once several adapters share a batch
and even (within noise) with one adapter (docs/serving.md has the figures); segment stays for
comparison.

The door to this room is `LoRASlots`: `write(slot, weights, scale)`, `clear(slot)` and
`select(rows)`. The adapter cache writes slots, the engine selects them; neither touches a tensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ailedger.core import errors
from ailedger.core.errors import LedgerError

Kernel = Literal["gather", "segment"]
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


@dataclass
class BatchSlots:
    """Which slot each batch row uses in the coming forward pass, shared by every LoRA layer."""

    rows: torch.Tensor | None = None  # (batch,) int64, or None: no row uses an adapter
    distinct: list[int] = field(default_factory=list)  # the non-zero slots present, for `segment`


class BatchedLoRALinear(nn.Module):
    """A base `nn.Linear` plus `max_slots` LoRA adapters, each batch row using its own slot."""

    def __init__(self, base: nn.Linear, batch: BatchSlots, max_slots: int, max_rank: int,
                 kernel: Kernel = "gather") -> None:
        super().__init__()
        self.base = base
        self.batch = batch
        self.kernel: Kernel = kernel
        self.in_features, self.out_features = base.in_features, base.out_features
        w = base.weight
        self.register_buffer("a", torch.zeros(max_slots, base.in_features, max_rank, dtype=w.dtype, device=w.device))
        self.register_buffer("b", torch.zeros(max_slots, max_rank, base.out_features, dtype=w.dtype, device=w.device))
        self.register_buffer("scale", torch.zeros(max_slots, dtype=w.dtype, device=w.device))
        self.a: torch.Tensor
        self.b: torch.Tensor
        self.scale: torch.Tensor

    @property
    def weight(self) -> torch.Tensor:  # HF code reads `.weight` of projections for dtype and device
        return self.base.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.base(x)
        rows = self.batch.rows
        if rows is None:
            return out
        if self.kernel == "segment":
            return out + segment_delta(x, self.a, self.b, self.scale, rows, self.batch.distinct)
        return out + gather_delta(x, self.a, self.b, self.scale, rows)

    def write(self, slot: int, a: torch.Tensor, b: torch.Tensor, scale: float) -> None:
        """Copy one adapter's PEFT-layout matrices (a: (r, in), b: (out, r)) into `slot`, zero-padding r."""
        r = a.shape[0]
        max_rank = self.a.shape[2]
        if a.shape != (r, self.in_features) or b.shape != (self.out_features, r) or r > max_rank:
            raise LedgerError(errors.ADAPTER_SHAPE_MISMATCH,
                              f"lora_A {list(a.shape)} / lora_B {list(b.shape)} do not fit "
                              f"({self.in_features} -> {self.out_features}, rank <= {max_rank})")
        with torch.no_grad():
            self.a[slot].zero_()
            self.b[slot].zero_()
            self.a[slot, :, :r].copy_(a.t())
            self.b[slot, :r, :].copy_(b.t())
            self.scale[slot] = scale

    def clear(self, slot: int) -> None:
        with torch.no_grad():
            self.a[slot].zero_()
            self.b[slot].zero_()
            self.scale[slot] = 0


def gather_delta(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor,
                 rows: torch.Tensor) -> torch.Tensor:
    """Each row's delta from its own gathered (in, r) and (r, out) matrices: two batched matmuls."""
    batch = x.shape[0]
    xs = x.reshape(batch, -1, x.shape[-1])  # (batch, tokens, in)
    delta = torch.bmm(torch.bmm(xs, a[rows]), b[rows]) * scale[rows].view(batch, 1, 1)
    return delta.view(*x.shape[:-1], b.shape[-1])


def segment_delta(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor,
                  rows: torch.Tensor, distinct: Sequence[int]) -> torch.Tensor:
    """The same delta, one pair of matmuls per distinct slot present (rows grouped by slot)."""
    delta = x.new_zeros(*x.shape[:-1], b.shape[-1])
    for slot in distinct:
        idx = (rows == slot).nonzero().squeeze(1)
        delta[idx] = (x[idx] @ a[slot]) @ b[slot] * scale[slot]
    return delta


class LoRASlots:
    """The door to the LoRA room: the adapted layers of one model, addressed by module name and slot."""

    def __init__(self, layers: Mapping[str, BatchedLoRALinear], batch: BatchSlots, max_slots: int,
                 max_rank: int) -> None:
        self.layers = dict(layers)
        self.batch = batch
        self.max_slots = max_slots
        self.max_rank = max_rank

    def write(self, slot: int, weights: Mapping[str, tuple[torch.Tensor, torch.Tensor]], scale: float) -> None:
        """Put an adapter in `slot`: `weights` maps module names to PEFT-layout (lora_A, lora_B)."""
        if not 1 <= slot < self.max_slots:
            raise ValueError(f"slot {slot} is not in 1..{self.max_slots - 1}")
        unknown = sorted(set(weights) - set(self.layers))
        if unknown:
            raise LedgerError(errors.ADAPTER_SHAPE_MISMATCH, f"adapter targets modules not served: {unknown[:3]}")
        for name, layer in self.layers.items():
            if name in weights:
                layer.write(slot, *weights[name], scale)
            else:
                layer.clear(slot)

    def clear(self, slot: int) -> None:
        for layer in self.layers.values():
            layer.clear(slot)

    def select(self, rows: Sequence[int]) -> None:
        """Say which slot each batch row of the next forward pass uses (0: the base alone)."""
        distinct = sorted({s for s in rows if s})
        self.batch.distinct = distinct
        device = next(iter(self.layers.values())).a.device if self.layers else None
        self.batch.rows = torch.tensor(list(rows), dtype=torch.long, device=device) if distinct else None

    def set_kernel(self, kernel: Kernel) -> None:
        for layer in self.layers.values():
            layer.kernel = kernel

    def resident_bytes(self) -> int:
        """Bytes held by the stacked slot tensors of every layer (all slots, padded to max_rank)."""
        return sum(t.numel() * t.element_size() for layer in self.layers.values() for t in (layer.a, layer.b))


def inject(model: nn.Module, target_modules: Sequence[str] = ATTENTION, max_slots: int = 17, max_rank: int = 8,
           kernel: Kernel = "gather") -> LoRASlots:
    """Replace, in place, every `nn.Linear` whose name ends with a target by a batched LoRA layer.

    Module names are PEFT's (`model.layers.0.self_attn.q_proj`), so an adapter's tensor names map
    onto them directly. `max_slots` counts slot 0, the no-adapter slot.
    """
    if max_slots < 2 or max_rank < 1:
        raise ValueError("need max_slots >= 2 (slot 0 is the base) and max_rank >= 1")
    batch = BatchSlots()
    targets = tuple(target_modules)
    found = [(name, mod) for name, mod in model.named_modules()
             if isinstance(mod, nn.Linear) and name.split(".")[-1] in targets]
    if not found:
        raise LedgerError(errors.ADAPTER_SHAPE_MISMATCH, f"no linear layer named {list(targets)} in the model")
    layers = {}
    for name, linear in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        layer = BatchedLoRALinear(linear, batch, max_slots, max_rank, kernel)
        setattr(parent, child, layer)
        layers[name] = layer
    return LoRASlots(layers, batch, max_slots, max_rank)
