"""The LoRA room: one base projection for the whole batch, plus each row's own low-rank delta.

Every adapted projection keeps its adapters stacked in slots: `a[slot]` is (in, max_rank),
`b[slot]` is (max_rank, out), `scale[slot]` is alpha/r. Slot 0 is all zeros and means "no adapter".
Before a forward pass the caller says which slot each batch row uses (`LoRASlots.select`); each
layer then runs the base `nn.Linear` once over the whole batch and adds `x @ a[row] @ b[row] * scale`
by gathering the rows' matrices and running two batched matmuls. Nothing loops over requests and no
weights are swapped or merged, so any mix of adapters costs one pass.

Ranks below `max_rank` are zero-padded: the padded columns of `x @ a` are exact zeros and add
nothing to `@ b`, so a rank-4 adapter in a rank-8 slot computes exactly what it computes alone.

Three kernels compute the delta. `cached` (the default) keeps every layer's per-row matrices (each
row's (in, r), and its (r, out) times its scale) in reusable buffers and rewrites only the rows whose
slot changed since (or whose slot was rewritten): a decode step after a decode step writes nothing,
a join or a leave writes the rows that moved, a prefill between decode steps uses a second buffer.
A layer's forward is then one `bmm` and one in-place `baddbmm_` into the base output. On CPU,
gathering the rows' matrices anew in each of the 120 adapted projections of every SmolLM2 step was
most of what adapters cost. The price is memory: two buffers of the batch's rows, as large as 2 x
rows / slots of the slot tensors (about 120 MB for SmolLM2's attention at 16 rows, rank 8).
`gather` gathers on every forward (the plain reference); `segment` groups rows by slot and runs one
pair of matmuls per distinct slot present. docs/serving.md has the figures.

The door to this room is `LoRASlots`: `write(slot, weights, scale)`, `clear(slot)` and
`select(rows)`. The adapter cache writes slots, the engine selects them; neither touches a tensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import nn

from ailedger.core import errors
from ailedger.core.errors import LedgerError

Kernel = Literal["cached", "gather", "segment"]
KERNELS: tuple[Kernel, ...] = ("cached", "gather", "segment")
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
Gathered = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: a rows (batch, in, r), scaled b rows (batch, r, out)


class BatchSlots:
    """Which slot each batch row uses in the coming forward pass, shared by every LoRA layer.

    For the `cached` kernel it also holds every layer's matrices gathered row by row for the current
    selection, in `keep` reusable buffers. A new selection takes the buffer it differs least from
    and rewrites only the positions that differ: a decode step after a decode step writes nothing,
    rows joining at the end write only theirs, a prefill between decode steps uses the other buffer.
    Rewriting a slot marks the positions holding it stale.
    """

    def __init__(self, keep: int = 2) -> None:
        self.rows: torch.Tensor | None = None  # (batch,) int64, or None: no row uses an adapter
        self.distinct: list[int] = []  # the non-zero slots present, for `segment`
        self.layers: list[BatchedLoRALinear] = []  # layer i reads entry i of `gathered()`
        self.keep = keep
        self.rows_gathered = 0  # positions written into the buffers so far (for tests and benchmarks)
        self._key: tuple[int, ...] = ()
        self._current: Gathered | None = None
        self._buffers: list[_RowBuffers] = []  # least recently used first

    def select(self, rows: Sequence[int], device: torch.device | None) -> None:
        key = tuple(rows)
        if key == self._key:
            return  # the same rows as the last forward (a decode step after a decode step): all still holds
        self._key = key
        self.distinct = sorted({s for s in key if s})
        self.rows = torch.tensor(key, dtype=torch.long, device=device) if self.distinct else None
        self._current = None

    def changed(self, slot: int) -> None:
        """`slot` was rewritten: whatever the buffers hold of it is stale."""
        for buf in self._buffers:
            buf.held = [-1 if s == slot else s for s in buf.held]
        self._current = None

    def gathered(self) -> Gathered:
        """Every layer's per-row matrices for the current selection (written only where they changed)."""
        if self._current is None:
            key, rows = self._key, self.rows
            assert rows is not None
            best = min(self._buffers, key=lambda b: b.cost(key), default=None)  # ties: least recently used
            capacity = len(key)
            if best is not None and best.capacity < len(key):
                self._buffers.remove(best)  # too small for these rows: one twice its size replaces it
                capacity, best = max(capacity, 2 * best.capacity), None
            if best is None or (best.cost(key) and len(self._buffers) < self.keep):
                best = _RowBuffers(self.layers, capacity, rows.device)
            else:
                self._buffers.remove(best)
            self._buffers.append(best)
            self.rows_gathered += best.fill(self.layers, key, rows)
            self._current = best.views(len(key))
        return self._current


class _RowBuffers:
    """Per-row LoRA matrices of every layer for up to `capacity` rows, and which slot each row holds."""

    def __init__(self, layers: Sequence[BatchedLoRALinear], capacity: int, device: torch.device) -> None:
        self.capacity = capacity
        self.held: list[int] = []  # the slot whose matrices sit at each position; -1: stale
        with torch.inference_mode(False):  # plain tensors: written in place both in and out of inference mode
            self.bufs = [(torch.empty(capacity, layer.in_features, layer.a.shape[2], dtype=layer.a.dtype,
                                      device=device),
                          torch.empty(capacity, layer.b.shape[1], layer.out_features, dtype=layer.b.dtype,
                                      device=device))
                         for layer in layers]

    def _differ(self, key: tuple[int, ...]) -> tuple[int, int]:
        """The range of positions [lo, hi) that must be rewritten to hold `key`."""
        held = self.held
        diff = [i for i, s in enumerate(key) if i >= len(held) or held[i] != s]
        return (diff[0], diff[-1] + 1) if diff else (0, 0)

    def cost(self, key: tuple[int, ...]) -> int:
        lo, hi = self._differ(key)
        return hi - lo

    def fill(self, layers: Sequence[BatchedLoRALinear], key: tuple[int, ...], rows: torch.Tensor) -> int:
        lo, hi = self._differ(key)
        if hi > lo:
            part = rows[lo:hi]
            for layer, (a_buf, b_buf) in zip(layers, self.bufs, strict=True):
                layer.gather_into(part, a_buf[lo:hi], b_buf[lo:hi])
        self.held = list(key) + self.held[len(key):]  # positions past the key keep what they hold
        return hi - lo

    def views(self, n: int) -> Gathered:
        return [(a[:n], b[:n]) for a, b in self.bufs]


class BatchedLoRALinear(nn.Module):
    """A base `nn.Linear` plus `max_slots` LoRA adapters, each batch row using its own slot."""

    def __init__(self, base: nn.Linear, batch: BatchSlots, max_slots: int, max_rank: int,
                 kernel: Kernel = "cached") -> None:
        super().__init__()
        self.base = base
        self.batch = batch
        self.kernel: Kernel = kernel
        self.index = len(batch.layers)
        batch.layers.append(self)
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
        if self.kernel == "cached":
            a_rows, b_rows = self.batch.gathered()[self.index]
            batch = x.shape[0]
            xa = torch.bmm(x.reshape(batch, -1, self.in_features), a_rows)
            out.view(batch, -1, self.out_features).baddbmm_(xa, b_rows)  # out += xa @ (b * scale), in place
            return out
        if self.kernel == "segment":
            return out + segment_delta(x, self.a, self.b, self.scale, rows, self.batch.distinct)
        return out + gather_delta(x, self.a, self.b, self.scale, rows)

    def gather_into(self, rows: torch.Tensor, a_out: torch.Tensor, b_out: torch.Tensor) -> None:
        """Write the rows' (in, r) matrices into `a_out` and their (r, out) matrices times their scale into `b_out`."""
        torch.index_select(self.a, 0, rows, out=a_out)
        torch.index_select(self.b, 0, rows, out=b_out)
        b_out.mul_(self.scale.index_select(0, rows)[:, None, None])

    def write(self, slot: int, a: torch.Tensor, b: torch.Tensor, scale: float) -> None:
        """Copy one adapter's PEFT-layout matrices (a: (r, in), b: (out, r)) into `slot`, zero-padding r."""
        r = a.shape[0]
        max_rank = self.a.shape[2]
        if a.shape != (r, self.in_features) or b.shape != (self.out_features, r) or r > max_rank:
            raise LedgerError(errors.ADAPTER_SHAPE_MISMATCH,
                              f"lora_A {list(a.shape)} / lora_B {list(b.shape)} do not fit "
                              f"({self.in_features} -> {self.out_features}, rank <= {max_rank})")
        self.batch.changed(slot)
        with torch.no_grad():
            self.a[slot].zero_()
            self.b[slot].zero_()
            self.a[slot, :, :r].copy_(a.t())
            self.b[slot, :r, :].copy_(b.t())
            self.scale[slot] = scale

    def clear(self, slot: int) -> None:
        self.batch.changed(slot)
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
        self.device = next(iter(self.layers.values())).a.device if self.layers else None

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
        self.batch.select(rows, self.device)

    def set_kernel(self, kernel: Kernel) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"unknown LoRA kernel {kernel!r}; one of {KERNELS}")
        for layer in self.layers.values():
            layer.kernel = kernel

    def resident_bytes(self) -> int:
        """Bytes held by the stacked slot tensors of every layer (all slots, padded to max_rank)."""
        return sum(t.numel() * t.element_size() for layer in self.layers.values() for t in (layer.a, layer.b))


def inject(model: nn.Module, target_modules: Sequence[str] = ATTENTION, max_slots: int = 17, max_rank: int = 8,
           kernel: Kernel = "cached") -> LoRASlots:
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
