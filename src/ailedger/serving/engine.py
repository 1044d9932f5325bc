"""The scheduler room: requests wait, join the running batch, decode together, and leave.

One `step` is: drop cancelled requests; collect finished adapter loads; admit waiting requests
whose adapter has a slot (up to `max_batch` running), prefill them together and give each its first
token; then one batched decode step over every running row, each row with its own adapter slot;
then retire the rows that finished. Requests join and leave only between steps, so a request's
tokens do not depend on who else is in the batch (see `batchkv.py` for why the padding is exact).

The engine never touches weights. It tells the LoRA room which slot each row uses
(`LoRASlots.select`) and asks the adapter cache for slots (`acquire` / `release`); a request whose
adapter is still loading waits without holding up anyone else.

`submit` and `cancel` may be called from any thread; `step` runs on one thread (the caller's, or
the one `start` opens).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import DynamicCache

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.serving.adapters import AdapterCache
from ailedger.serving.batchkv import BatchKV
from ailedger.serving.lora import LoRASlots
from ailedger.serving.sampling import SamplingParams, choose

TokenCallback = Callable[["Generation", int], None]
DoneCallback = Callable[["Generation"], None]
Decode = Callable[[list[int]], str]
_ids = itertools.count(1)


@dataclass
class Request:
    prompt: Sequence[int]
    max_tokens: int = 16
    adapter: str | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stop_ids: frozenset[int] = frozenset()
    stop_strings: tuple[str, ...] = ()
    on_token: TokenCallback | None = None  # streaming: called with each new token, on the step thread
    on_done: DoneCallback | None = None  # called once `done` is set (finished, cancelled or failed), on the step thread
    id: str = field(default_factory=lambda: f"req-{next(_ids)}")


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Generation:
    """A request's progress and outcome; `done` is set once `finish_reason` is final."""

    request: Request
    tokens: list[int] = field(default_factory=list)
    text: str | None = None  # with a decoder: the completion text, cut before any stop string
    finish_reason: str | None = None  # "stop", "length", "cancelled" or "error"
    error: LedgerError | None = None
    slot: int = 0
    generator: torch.Generator | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def usage(self) -> Usage:
        return Usage(len(self.request.prompt), len(self.tokens))


class Engine:
    def __init__(self, model: nn.Module, slots: LoRASlots, adapters: AdapterCache | None = None,
                 decode: Decode | None = None, max_batch: int = 16, context_length: int | None = None) -> None:
        self.model = model
        self.device = next(model.parameters()).device  # inputs follow the weights (CPU or a GPU)
        self.slots = slots
        self.adapters = adapters
        self.decode = decode
        self.max_batch = max_batch
        config = getattr(model, "config", None)
        self.context_length = context_length or int(getattr(config, "max_position_embeddings", 1 << 30))
        self.waiting: list[Generation] = []
        self.running: list[Generation] = []  # row i of `kv` is running[i]
        self.kv = BatchKV(rows_capacity=max_batch)
        self._lock = threading.Lock()
        self._cancelled: set[str] = set()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- the client's side ---------------------------------------------------------------------------------
    def submit(self, request: Request) -> Generation:
        if not request.prompt:
            raise LedgerError(errors.BAD_REQUEST, "the prompt is empty")
        if request.max_tokens < 1:
            raise LedgerError(errors.BAD_REQUEST, "max_tokens must be at least 1")
        if len(request.prompt) + request.max_tokens > self.context_length:
            raise LedgerError(errors.BAD_REQUEST, f"prompt ({len(request.prompt)}) + max_tokens "
                                                  f"({request.max_tokens}) exceeds the context ({self.context_length})")
        if request.adapter is not None and (self.adapters is None or not self.adapters.known(request.adapter)):
            raise LedgerError(errors.MODEL_NOT_FOUND, f"no adapter {request.adapter!r} is served here")
        gen = Generation(request, generator=request.sampling.generator())
        with self._lock:
            self.waiting.append(gen)
        self._wake.set()
        return gen

    def cancel(self, request_id: str) -> None:
        """Stop a request (its client went away); it is removed before the next step, counted for what it got."""
        with self._lock:
            self._cancelled.add(request_id)
        self._wake.set()

    def has_work(self) -> bool:
        with self._lock:
            return bool(self.waiting or self.running)

    # -- the step ------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def step(self) -> None:
        self._apply_cancellations()
        if self.adapters is not None:
            self.adapters.poll()
        joiners = self._admit()
        if joiners:
            self._prefill(joiners)
            self._drop_finished()
        if self.running:
            self._decode()
            self._drop_finished()

    def run(self, max_steps: int | None = None) -> None:
        """Step until no request is waiting or running (or `max_steps`)."""
        steps = 0
        while self.has_work() and (max_steps is None or steps < max_steps):
            if not self.running and self.adapters is not None and self.adapters.pending():
                self._wake.wait(0.002)  # only loads in flight: let the loader thread work
            self.step()
            steps += 1

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        gens = [self.submit(r) for r in requests]
        self.run()
        return gens

    def start(self) -> None:
        """Step on a background thread until `stop` (for servers that submit from other threads)."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                if self.has_work():
                    self.step()
                    if not self.running:
                        self._wake.wait(0.002)
                else:
                    self._wake.wait(0.05)
                self._wake.clear()

        self._thread = threading.Thread(target=loop, name="engine-step", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- inside the room -----------------------------------------------------------------------------------
    def _apply_cancellations(self) -> None:
        with self._lock:
            cancelled, self._cancelled = self._cancelled, set()
            for gen in [g for g in self.waiting if g.request.id in cancelled]:
                self.waiting.remove(gen)
                self._finish(gen, "cancelled")
        for gen in self.running:
            if gen.request.id in cancelled:
                gen.finish_reason = "cancelled"
        self._drop_finished()

    def _admit(self) -> list[Generation]:
        joiners: list[Generation] = []
        with self._lock:
            for gen in list(self.waiting):
                if len(self.running) + len(joiners) >= self.max_batch:
                    break
                adapter = gen.request.adapter
                if adapter is not None and self.adapters is not None:
                    try:
                        slot = self.adapters.acquire(adapter)
                    except LedgerError as exc:
                        self.waiting.remove(gen)
                        gen.error = exc
                        self._finish(gen, "error")
                        continue
                    if slot is None:
                        continue  # still loading: later requests may go ahead
                    gen.slot = slot
                self.waiting.remove(gen)
                joiners.append(gen)
        return joiners

    def _prefill(self, joiners: list[Generation]) -> None:
        """Run the joiners' prompts together (left-padded), then add their rows to the running batch."""
        n = max(len(g.request.prompt) for g in joiners)
        pad = [n - len(g.request.prompt) for g in joiners]
        dev = self.device
        ids = torch.tensor([[0] * p + list(g.request.prompt) for g, p in zip(joiners, pad, strict=True)], device=dev)
        part = BatchKV(DynamicCache(), pad)
        mask = (torch.arange(n, device=dev)[None, :] >= torch.tensor(pad, device=dev)[:, None]).long()
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        self.slots.select([g.slot for g in joiners])
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=part.cache,
                         use_cache=True, logits_to_keep=1)
        self.kv.merge(part)  # zeroes the padded positions as it copies them in
        self.running.extend(joiners)
        self._emit(joiners, out.logits[:, -1, :])

    def _decode(self) -> None:
        """One token for every running row: a single forward pass over the whole batch."""
        lengths = self.kv.real_lengths()
        ids = torch.tensor([[g.tokens[-1]] for g in self.running], device=self.device)
        positions = torch.tensor(lengths, device=self.device)[:, None]
        self.slots.select([g.slot for g in self.running])
        out = self.model(input_ids=ids, attention_mask=self.kv.mask(extra=1), position_ids=positions,
                         past_key_values=self.kv.cache, use_cache=True)
        self._emit(self.running, out.logits[:, -1, :])

    def _emit(self, gens: list[Generation], logits: torch.Tensor) -> None:
        chosen = choose(logits, [g.request.sampling for g in gens], [g.generator for g in gens])
        for gen, token in zip(gens, chosen, strict=True):
            gen.tokens.append(token)
            req = gen.request
            if self.decode is not None:
                gen.text = self.decode(gen.tokens)
            if req.on_token is not None:
                req.on_token(gen, token)
            if token in req.stop_ids:
                gen.finish_reason = "stop"
            elif gen.text is not None and any(s in gen.text for s in req.stop_strings):
                gen.text = gen.text[:min(gen.text.index(s) for s in req.stop_strings if s in gen.text)]
                gen.finish_reason = "stop"
            elif len(gen.tokens) >= req.max_tokens:
                gen.finish_reason = "length"

    def _drop_finished(self) -> None:
        alive = [i for i, g in enumerate(self.running) if g.finish_reason is None]
        if len(alive) == len(self.running):
            return
        # rows from the end fill the holes, the others stay where they are: the KV cache moves one row
        # per hole (not every row after it), and the LoRA room rewrites only the rows that changed slot
        n = len(alive)
        tail = iter(i for i in alive if i >= n)
        keep = [i if self.running[i].finish_reason is None else next(tail) for i in range(n)]
        for gen in self.running:
            if gen.finish_reason is not None:
                self._finish(gen, gen.finish_reason)
        self.running = [self.running[i] for i in keep]
        self.kv.select(keep)

    def _finish(self, gen: Generation, reason: str) -> None:
        gen.finish_reason = reason
        if gen.slot and gen.request.adapter is not None and self.adapters is not None:
            self.adapters.release(gen.request.adapter)
        gen.done.set()
        if gen.request.on_done is not None:
            gen.request.on_done(gen)
