"""The adapter cache room: adapters on disk, in RAM under a byte budget, and in the LoRA room's slots.

An adapter moves through three places. On disk it is a PEFT directory (`adapter_model.safetensors`
and `adapter_config.json`, with the factory's model card when a base identity is given to check it
against). In RAM it is a set of CPU tensors at its own rank; the RAM cache holds at most
`budget_bytes` of them, counted in bytes because a rank-64 adapter costs eight rank-8 ones. In a
slot it is a copy inside the stacked tensors of `lora.LoRASlots`, which the engine's rows address.

Loading never blocks a decode step: reading and checking the files runs on a loader thread into
CPU tensors, and the step thread only makes the short slot copy, between steps, in `poll`. The
budget is reserved when a load starts (its size is read from the safetensors header), so RAM never
exceeds it, even with loads in flight.

Eviction is least-recently-used among adapters that are neither pinned nor used by a running
request: when the budget is short an adapter leaves RAM (and its slot); when slots are short it
leaves its slot and stays in RAM, ready to come back with a copy and no disk read.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory.adapters import PEFT_PREFIX, validate_adapter
from ailedger.factory.basemodel import BaseModelInfo
from ailedger.factory.checkpoints import ADAPTER_CONFIG, ADAPTER_FILE
from ailedger.factory.tensors import read_header
from ailedger.serving.lora import LoRASlots

Weights = dict[str, tuple[torch.Tensor, torch.Tensor]]  # module name -> (lora_A (r, in), lora_B (out, r))


@dataclass(frozen=True)
class LoadedAdapter:
    """An adapter's tensors in RAM, read and checked off the step thread."""

    adapter_id: str
    weights: Weights
    rank: int
    scale: float
    bytes: int


def read_adapter(adapter_id: str, directory: Path, base: BaseModelInfo | None = None,
                 base_shapes: dict[str, tuple[int, ...]] | None = None) -> LoadedAdapter:
    """Read a PEFT adapter directory into CPU tensors; with `base`, check it against that base first."""
    if base is not None:
        validate_adapter(directory, base, base_shapes)  # hash, base identity, shapes: each its own code
    try:
        config = json.loads((directory / ADAPTER_CONFIG).read_text())
        rank, alpha = int(config["r"]), float(config["lora_alpha"])
        rslora = bool(config.get("use_rslora", False))
        tensors = load_file(str(directory / ADAPTER_FILE))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LedgerError(errors.ADAPTER_INVALID, f"{directory}: {exc}") from exc
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for name, t in tensors.items():
        bare = name.removeprefix(PEFT_PREFIX)
        for kind in ("lora_A", "lora_B"):
            if f".{kind}." in bare:
                pairs.setdefault(bare.split(f".{kind}.")[0], {})[kind] = t
    weights = {}
    for module, pair in pairs.items():
        if set(pair) != {"lora_A", "lora_B"}:
            raise LedgerError(errors.ADAPTER_INVALID, f"{directory}: {module} lacks lora_A or lora_B")
        weights[module] = (pair["lora_A"], pair["lora_B"])
    if not weights:
        raise LedgerError(errors.ADAPTER_INVALID, f"{directory}: no LoRA tensors")
    scale = alpha / math.sqrt(rank) if rslora else alpha / rank
    size = sum(t.numel() * t.element_size() for pair in weights.values() for t in pair)
    return LoadedAdapter(adapter_id, weights, rank, scale, size)


def file_bytes(directory: Path) -> int:
    """The RAM an adapter will take, from its safetensors header (before reading any tensor)."""
    return sum(e.end - e.start for e in read_header(directory / ADAPTER_FILE)
               if ".lora_A." in e.name or ".lora_B." in e.name)


@dataclass
class _Entry:
    path: Path
    bytes: int = 0  # reserved or resident RAM
    loading: Future[LoadedAdapter] | None = None
    loaded: LoadedAdapter | None = None
    error: LedgerError | None = None
    slot: int = 0  # 0: not in a slot
    pinned: bool = False
    users: int = 0  # running requests using its slot


class AdapterCache:
    """Adapters by id: registered paths, a byte-budgeted LRU of CPU tensors, and the slots they occupy.

    Every method is called from the engine's step thread; only file reading runs on the loader.
    """

    def __init__(self, slots: LoRASlots, budget_bytes: int, base: BaseModelInfo | None = None,
                 base_shapes: dict[str, tuple[int, ...]] | None = None, loader_threads: int = 1) -> None:
        self.slots = slots
        self.budget_bytes = budget_bytes
        self.base = base
        self.base_shapes = base_shapes
        self._entries: dict[str, _Entry] = {}
        self._lru: OrderedDict[str, None] = OrderedDict()  # adapters in RAM or loading, oldest use first
        self._free_slots = list(range(slots.max_slots - 1, 0, -1))
        self._pool = ThreadPoolExecutor(max_workers=loader_threads, thread_name_prefix="adapter-load")

    # -- registry ------------------------------------------------------------------------------------------
    def register(self, adapter_id: str, directory: Path | str) -> None:
        path = Path(directory)
        if not (path / ADAPTER_FILE).is_file():
            raise LedgerError(errors.ADAPTER_INVALID, f"{path / ADAPTER_FILE} is missing")
        old = self._entries.get(adapter_id)
        if old is not None and old.path != path:
            self.evict(adapter_id)
        self._entries.setdefault(adapter_id, _Entry(path))

    def known(self, adapter_id: str) -> bool:
        return adapter_id in self._entries

    def pin(self, adapter_id: str, pinned: bool = True) -> None:
        """A pinned adapter stays in RAM and in its slot; pinning also starts loading it."""
        entry = self._entry(adapter_id)
        entry.pinned = pinned
        if pinned:
            self._start_load(adapter_id, entry)

    # -- the engine's side ---------------------------------------------------------------------------------
    def acquire(self, adapter_id: str) -> int | None:
        """The slot a new request may use now (its use counted), or None while the adapter is not ready.

        Raises the load's error if the adapter could not be read or checked.
        """
        entry = self._entry(adapter_id)
        if entry.error is not None:
            raise entry.error
        self._touch(adapter_id)
        if entry.slot == 0 and entry.loaded is not None:
            self._to_slot(adapter_id, entry)
        if entry.slot:
            entry.users += 1
            return entry.slot
        self._start_load(adapter_id, entry)
        return None

    def release(self, adapter_id: str) -> None:
        entry = self._entry(adapter_id)
        entry.users = max(0, entry.users - 1)

    def poll(self) -> None:
        """Between steps: collect finished loads (their slot copy happens on the next `acquire`)."""
        for adapter_id, entry in self._entries.items():
            fut = entry.loading
            if fut is None or not fut.done():
                continue
            entry.loading = None
            exc = fut.exception()
            if exc is None:
                entry.loaded = fut.result()
                entry.bytes = entry.loaded.bytes
                if entry.pinned:
                    with contextlib.suppress(LedgerError):  # recorded on the entry; `acquire` raises it
                        self._to_slot(adapter_id, entry)
            else:
                self._forget(entry)
                self._lru.pop(adapter_id, None)
                entry.error = exc if isinstance(exc, LedgerError) else LedgerError(errors.ADAPTER_INVALID, str(exc))

    def pending(self) -> bool:
        return any(e.loading is not None for e in self._entries.values())

    # -- what is resident ----------------------------------------------------------------------------------
    def resident(self) -> dict[str, int]:
        """Bytes in RAM per adapter (loaded ones only; loads in flight reserve but are not listed)."""
        return {k: e.bytes for k, e in self._entries.items() if e.loaded is not None}

    def used_bytes(self) -> int:
        return sum(e.bytes for e in self._entries.values() if e.loaded is not None or e.loading is not None)

    def slot_of(self, adapter_id: str) -> int:
        return self._entry(adapter_id).slot

    def evict(self, adapter_id: str) -> None:
        """Drop an unused adapter from its slot and from RAM (it stays registered)."""
        entry = self._entry(adapter_id)
        if entry.users or entry.loading is not None:
            raise LedgerError(errors.BAD_REQUEST, f"adapter {adapter_id} is in use or loading")
        self._forget(entry)
        self._lru.pop(adapter_id, None)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- inside the room -----------------------------------------------------------------------------------
    def _entry(self, adapter_id: str) -> _Entry:
        entry = self._entries.get(adapter_id)
        if entry is None:
            raise LedgerError(errors.MODEL_NOT_FOUND, f"no adapter registered as {adapter_id!r}")
        return entry

    def _touch(self, adapter_id: str) -> None:
        if adapter_id in self._lru:
            self._lru.move_to_end(adapter_id)

    def _evictable(self, entry: _Entry) -> bool:
        return not entry.pinned and entry.users == 0 and entry.loading is None

    def _start_load(self, adapter_id: str, entry: _Entry) -> None:
        if entry.loading is not None or entry.loaded is not None or entry.error is not None:
            return
        try:
            need = file_bytes(entry.path)
        except LedgerError as exc:
            entry.error = exc
            return
        if need > self.budget_bytes:
            entry.error = LedgerError(errors.BAD_REQUEST, f"adapter {adapter_id} needs {need} bytes, the cache "
                                                          f"budget is {self.budget_bytes}")
            return
        if not self._make_room(need):
            return  # everything resident is pinned or in use: try again after a request finishes
        entry.bytes = need
        self._lru[adapter_id] = None
        self._lru.move_to_end(adapter_id)
        entry.loading = self._pool.submit(read_adapter, adapter_id, entry.path, self.base, self.base_shapes)

    def _make_room(self, need: int) -> bool:
        victims = [k for k in self._lru if self._evictable(self._entries[k])]
        while self.used_bytes() + need > self.budget_bytes:
            if not victims:
                return False
            victim = victims.pop(0)
            self._forget(self._entries[victim])
            del self._lru[victim]
        return True

    def _to_slot(self, adapter_id: str, entry: _Entry) -> None:
        if not self._free_slots:
            holders = [k for k in self._lru if self._entries[k].slot and self._evictable(self._entries[k])]
            if not holders:
                return
            self._free_slot(self._entries[holders[0]])
        assert entry.loaded is not None
        slot = self._free_slots.pop()
        try:
            self.slots.write(slot, entry.loaded.weights, entry.loaded.scale)
        except (LedgerError, ValueError) as exc:  # modules the base does not serve: refuse this adapter
            self.slots.clear(slot)
            self._free_slots.append(slot)
            self._forget(entry)
            entry.error = exc if isinstance(exc, LedgerError) else LedgerError(errors.ADAPTER_SHAPE_MISMATCH, str(exc))
            raise entry.error from None
        entry.slot = slot

    def _free_slot(self, entry: _Entry) -> None:
        if entry.slot:
            self.slots.clear(entry.slot)
            self._free_slots.append(entry.slot)
            entry.slot = 0

    def _forget(self, entry: _Entry) -> None:
        self._free_slot(entry)
        entry.loaded, entry.loading, entry.bytes = None, None, 0
