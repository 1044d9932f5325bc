"""Per-record gradients of an adapter's LoRA parameters at its saved checkpoints, projected to k numbers.

The gradient of a record is the gradient of the loss exactly as training computed it for that
record alone: the same token ids and labels (`factory.data.encode` with the adapter's `max_len` and
`loss_on`, so a chat record counts only its assistant turns), the mean cross-entropy over its
supervised tokens, with respect to the LoRA matrices only (the base stays frozen), in fp32. Two
differences from a training step, both for determinism: LoRA dropout is off (the gradient of the
expected loss, not of one random mask), and each record is its own batch of one (no padding, so no
other record changes its numbers).

Why a loop over records rather than `torch.func.vmap`: Hugging Face attention builds its masks with
data-dependent Python control flow, which vmap cannot trace, and a batch of one per record is the
loss exactly as defined above. On the tiny model a record takes a few milliseconds; see
docs/attribution.md for SmolLM2.

Optimizer correction (TrackStar): AdamW moved each parameter by about m / sqrt(v), so a record's
effect on the weights is its gradient divided by sqrt(v) + eps, with v the second-moment estimate
(bias-corrected) saved in the checkpoint's `optimizer.pt`. Both record and query gradients get the
same correction before projection.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from peft import PeftModel, set_peft_model_state_dict
from safetensors.torch import load_file

from ailedger.attribution.projection import F32, ParamShape, SparseProjection
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory import checkpoints
from ailedger.factory.adapters import AdapterInfo
from ailedger.factory.basemodel import BaseModel
from ailedger.factory.data import IGNORE, Example, collate, encode
from ailedger.factory.tensors import read_header, tensors_hash

OPTIMIZER_FILE = "optimizer.pt"
NEEDED = (checkpoints.ADAPTER_FILE, checkpoints.ADAPTER_CONFIG, "state.json", OPTIMIZER_FILE)
_ADAPTER_NAME = re.compile(r"\.default(?=\.weight$)")
_LAYER = re.compile(r"\.layers\.(\d+)\.")


@dataclass(frozen=True)
class CheckpointRef:
    step: int
    path: Path
    adapter_hash: str  # of the checkpoint's LoRA tensors, as `train.adapter_hash` computes it for adapters


def adapter_checkpoints(info: AdapterInfo) -> list[CheckpointRef]:
    """The checkpoints the adapter's card lists, each checked to be present and whole."""
    names = info.card.get("checkpoints")
    if not isinstance(names, list) or not names:
        raise LedgerError(errors.CHECKPOINT_MISSING, f"{info.path}: its card lists no checkpoints")
    found = []
    for name in names:
        path = info.path / "checkpoints" / str(name)
        missing = [f for f in NEEDED if not (path / f).is_file()]
        if missing:
            raise LedgerError(errors.CHECKPOINT_MISSING, f"{path}: {', '.join(missing)} missing")
        try:
            step = int(json.loads((path / "state.json").read_text())["step"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LedgerError(errors.CHECKPOINT_MISSING, f"{path}/state.json is unreadable ({exc})") from exc
        try:
            digest = tensors_hash(read_header(path / checkpoints.ADAPTER_FILE))
        except LedgerError as exc:  # truncated or unreadable: as good as missing
            raise LedgerError(errors.CHECKPOINT_MISSING, f"{path}: {exc}") from exc
        found.append(CheckpointRef(step, path, digest))
    return sorted(found, key=lambda c: c.step)


def training_examples(records: Sequence[dict[str, Any]], base: BaseModel, card: dict[str, Any]) -> list[Example | None]:
    """Each record as training saw it (None for a record without text, which training skipped)."""
    hp = card.get("hyperparams", {})
    max_len, loss_on = int(hp.get("max_len", 256)), str(hp.get("loss_on", "all"))
    out: list[Example | None] = []
    for record in records:
        found = encode([record], base.tokenizer, max_len, loss_on)
        out.append(found[0] if found else None)
    return out


def lora_shapes(adapter: AdapterInfo, base: BaseModel, top_layers: int) -> list[ParamShape]:
    """The LoRA tensors an index differentiates (those of the top `top_layers` blocks), in name order.

    Read from the adapter file's header, without building the model: a caller that hands the
    gradients to Ray workers needs only these to lay out its projection.
    """
    layers = int(base.model.config.num_hidden_layers)
    return sorted((ParamShape(e.name, tuple(e.shape)) for e in adapter.tensors if _kept(e.name, top_layers, layers)),
                  key=lambda p: p.name)


def _layer_count(model: torch.nn.Module) -> int:
    found = [int(m.group(1)) for n, _ in model.named_parameters() if (m := _LAYER.search(n))]
    return max(found) + 1 if found else 0


def _kept(name: str, top_layers: int, layers: int) -> bool:
    """Whether a LoRA tensor is in the top `top_layers` transformer blocks (0: every block)."""
    if top_layers <= 0:
        return True
    m = _LAYER.search(name)
    return m is None or int(m.group(1)) >= layers - top_layers


class LoraGradients:
    """A copy of the base carrying the adapter's LoRA layers, set to one checkpoint at a time.

    With `top_layers` > 0 only the LoRA tensors of the last `top_layers` transformer blocks (the
    "top") are differentiated, at each checkpoint, and the blocks below them (the "bottom") always
    carry the served adapter's own LoRA weights: the gradient is that of Top_c(Bottom(x)), the top
    blocks as they were at checkpoint c on the representation the served adapter computes. Why: the
    bottom's output then does not depend on the checkpoint, so one forward pass through it (no
    gradient) serves every checkpoint, and each checkpoint costs only the top blocks' forward and
    backward passes, with the output layer evaluated at the supervised positions only
    (docs/attribution.md, "Differentiating only the top blocks"). At the last checkpoint, which is
    the served adapter, this is the exact gradient of those tensors.
    """

    def __init__(self, base: BaseModel, adapter: AdapterInfo, optimizer_correction: bool = True,
                 top_layers: int = 0) -> None:
        fp32 = copy.deepcopy(base.model)  # the base is left as it is; gradients are taken in fp32
        for tensor in (*fp32.parameters(), *fp32.buffers()):
            if tensor.is_floating_point():
                tensor.data = tensor.data.float()
        model = PeftModel.from_pretrained(fp32, str(adapter.path), is_trainable=True)
        model.eval()  # no dropout: the gradient of the expected loss
        self.model = model
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self._training_order = [_ADAPTER_NAME.sub("", n) for n, _ in trainable]  # AdamW's parameter order
        everything = dict(sorted((_ADAPTER_NAME.sub("", n), p) for n, p in trainable))
        saved = {e.name for e in adapter.tensors}
        if set(everything) != saved:
            odd = sorted(saved ^ set(everything))
            raise LedgerError(errors.ADAPTER_INVALID, f"{adapter.path}: LoRA tensors {odd} do not match the model's")
        layers = _layer_count(model)
        self.params = {n: p for n, p in everything.items() if _kept(n, top_layers, layers)}
        for n, p in everything.items():  # autograd then stops below the lowest kept layer
            p.requires_grad_(n in self.params)
        self.all_shapes = {n: tuple(p.shape) for n, p in everything.items()}
        self.cut = layers - top_layers if 0 < top_layers < layers else 0  # first top block; 0: every block
        served = load_file(str(adapter.path / checkpoints.ADAPTER_FILE)) if self.cut else {}
        self._bottom = {n: t for n, t in served.items() if n not in self.params}  # the served adapter's bottom
        causal: Any = model.get_base_model()
        self._decoder: Any = causal.get_decoder()
        self._head: Any = causal.get_output_embeddings()
        self.shapes = [ParamShape(n, tuple(p.shape)) for n, p in self.params.items()]
        if self.shapes != lora_shapes(adapter, base, top_layers):  # what a cluster's caller lays its projection out by
            raise LedgerError(errors.ADAPTER_INVALID, f"{adapter.path}: LoRA tensor shapes differ from the model's")
        self.optimizer_correction = optimizer_correction
        pad = base.tokenizer.pad_token_id
        self.pad = pad if isinstance(pad, int) else int(base.tokenizer.eos_token_id or 0)
        self._scale: torch.Tensor | None = None
        self._states: dict[tuple[str, str], tuple[dict[str, torch.Tensor], torch.Tensor | None]] = {}

    def load(self, ckpt: CheckpointRef) -> None:
        """Put the checkpoint's LoRA weights (and its optimizer correction) in place."""
        tensors, self._scale = self.state_of(ckpt)
        try:
            set_peft_model_state_dict(self.model, {**tensors, **self._bottom})
        except (RuntimeError, ValueError) as exc:
            raise LedgerError(errors.CHECKPOINT_MISMATCH, f"{ckpt.path}: {exc}") from exc

    def state_of(self, ckpt: CheckpointRef) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """The checkpoint's LoRA tensors and optimizer correction, read on first use and then kept.

        Why kept: an index build visits every checkpoint once per chunk of records, and reading the
        optimizer state again each time was a sixth of a build; a scorer visits each one per answer.
        """
        key = (str(ckpt.path), ckpt.adapter_hash)
        if key not in self._states:
            try:
                tensors = load_file(str(ckpt.path / checkpoints.ADAPTER_FILE))
                shapes = {name: tuple(t.shape) for name, t in tensors.items()}
                if shapes != self.all_shapes:  # PEFT would skip what does not match, silently
                    raise ValueError("its LoRA tensors are not the adapter's")
            except (OSError, RuntimeError, ValueError) as exc:
                raise LedgerError(errors.CHECKPOINT_MISMATCH, f"{ckpt.path}: {exc}") from exc
            self._states[key] = tensors, self.correction(ckpt) if self.optimizer_correction else None
        return self._states[key]

    def correction(self, ckpt: CheckpointRef) -> torch.Tensor:
        """1 / (sqrt(v_hat) + eps) per parameter, flattened in name order, from the checkpoint's AdamW state."""
        try:
            saved = torch.load(ckpt.path / OPTIMIZER_FILE, weights_only=True)
            group = saved["param_groups"][0]
            beta2, eps = float(group["betas"][1]), float(group["eps"])
            by_name = {}
            for i, name in enumerate(self._training_order):
                if name not in self.params:
                    continue
                st = saved["state"][i]
                v, t = st["exp_avg_sq"], float(st["step"])
                if tuple(v.shape) != tuple(self.params[name].shape):
                    raise ValueError(f"optimizer state {i} is {list(v.shape)}, {name} is "
                                     f"{list(self.params[name].shape)}")
                by_name[name] = 1.0 / ((v.float() / (1.0 - beta2 ** t)).sqrt() + eps)
        except (OSError, RuntimeError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise LedgerError(errors.CHECKPOINT_MISMATCH, f"{ckpt.path}/{OPTIMIZER_FILE}: {exc}") from exc
        return torch.cat([by_name[n].reshape(-1) for n in self.params])

    def bottom(self, ids: Sequence[int]) -> torch.Tensor | None:
        """The bottom blocks' output for `ids` (1 x len x hidden), to reuse at every checkpoint; None with no split."""
        if not self.cut:
            return None
        with torch.no_grad(), self._blocks(0, self.cut, final_norm=False):
            out = self._decoder(input_ids=torch.tensor([list(ids)]), use_cache=False)
        return cast(torch.Tensor, out.last_hidden_state)

    @contextmanager
    def _blocks(self, lo: int, hi: int, final_norm: bool) -> Iterator[None]:
        """Run the decoder through blocks [lo, hi) only (and its final norm or not)."""
        decoder = self._decoder
        layers, norm, count = decoder.layers, decoder.norm, decoder.config.num_hidden_layers
        decoder.layers = torch.nn.ModuleList(list(layers)[lo:hi])
        decoder.config.num_hidden_layers = hi - lo
        if not final_norm:
            decoder.norm = torch.nn.Identity()
        try:
            yield
        finally:
            decoder.layers, decoder.norm, decoder.config.num_hidden_layers = layers, norm, count

    def _top_loss(self, bottom: torch.Tensor, labels: Sequence[int]) -> torch.Tensor:
        """The sequence's mean loss from the bottom's output: the top blocks, then logits at supervised positions."""
        target = torch.tensor(list(labels)[1:])
        where = (target != IGNORE).nonzero().squeeze(1)  # position t predicts token t + 1
        with self._blocks(self.cut, len(self._decoder.layers), final_norm=True):
            hidden = self._decoder(inputs_embeds=bottom, use_cache=False).last_hidden_state
        logits = self._head(hidden[0, where])
        return torch.nn.functional.cross_entropy(logits.float(), target[where])

    def gradient(self, ids: Sequence[int], labels: Sequence[int],
                 bottom: torch.Tensor | None = None) -> torch.Tensor | None:
        """The (corrected) gradient of one sequence's mean loss, flat in name order; None if no token is supervised.

        Only the kept blocks' LoRA tensors require a gradient, so the backward pass stops below them;
        with a split, `bottom` (from `bottom(ids)`) is reused when given.
        """
        if not any(label != IGNORE for label in labels[1:]):
            return None
        for p in self.params.values():
            p.grad = None
        with torch.enable_grad():
            if self.cut:
                below = bottom if bottom is not None else self.bottom(ids)
                assert below is not None
                loss: Any = self._top_loss(below, labels)
                loss.backward()
            else:
                self.model(**collate([Example(list(ids), list(labels))], self.pad)).loss.backward()
        flat = torch.cat([p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel())
                          for p in self.params.values()])
        for p in self.params.values():
            p.grad = None
        return flat * self._scale if self._scale is not None else flat

    def features(self, projection: SparseProjection, ids: Sequence[int], labels: Sequence[int],
                 bottom: torch.Tensor | None = None) -> F32:
        """The projected gradient (k numbers; zeros when nothing is supervised)."""
        flat = self.gradient(ids, labels, bottom)
        if flat is None:
            return np.zeros(projection.k, np.float32)
        return projection.project(flat.detach().numpy())
