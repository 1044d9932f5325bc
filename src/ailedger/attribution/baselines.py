"""The baselines that attribution is measured against: BM25 over the records, and TRAK (`traker`).

Both produce one float score per snapshot record for an answer, like the engine, so the benchmark
can turn every method's scores into payouts by the same rule (`combine.shares_from_scores`).

**BM25** (`bm25_scores`): the project's own Okapi BM25 (`serving.lexical`) over each record's text
(chat records as `role: content` lines), with the query = prompt + generated answer, as the issue
asks: the strongest form of "find the records that look like this exchange".

**TRAK** (`trak_scores`): MadryLab's `traker` package, driven through its own verbs (`load_checkpoint`,
`featurize`, `finalize_features`, `start_scoring_checkpoint`, `score`, `finalize_scores`), on the
same LoRA checkpoints and at the same projection dimension k as the engine, on CPU. What is ours is
what TRAK leaves to the user for a new task:

- the model output function (`LanguageModelOutput`), TRAK's choice for language models: the
  summed log-odds of the supervised tokens, f = sum_t log(p_t / (1 - p_t)), with the out-to-loss
  term Q = 1 - mean_t p_t;
- a gradient computer that takes each record's gradient in a batch of one (`_PerRecordGradients`):
  TRAK's `FunctionalGradientComputer` needs `torch.func.vmap`, which Hugging Face attention's
  data-dependent masks cannot trace, and its `IterativeGradientComputer` back-propagates the whole
  padded batch once per row (quadratic in the batch) and differentiates every parameter of the
  model, base included;
- a view of the adapter (`_LoraView`) whose only parameters are the LoRA matrices, so TRAK's
  gradients, projection and checkpoints cover exactly the weights the engine's influence covers;
- the ridge term: TRAK's default `lambda_reg = 0` inverts Phi^T Phi, which is singular whenever
  there are fewer records than k (always, in the benchmark); we give it the engine's relative
  damping, 0.1 x trace(Phi^T Phi) / k (averaged over the checkpoints), so neither method gets a better-conditioned
  kernel than the other.

TRAK's projector on CPU is its `BasicProjector` (dense Gaussian, regenerated block by block on
every call), so records are featurised in batches (`TRAK_BATCH`) to pay for it once per batch.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import trak.traker
from safetensors.torch import load_file
from torch import Tensor, nn
from trak import TRAKer
from trak.gradient_computers import AbstractGradientComputer
from trak.modelout_functions import AbstractModelOutput

from ailedger.attribution.features import LoraGradients, adapter_checkpoints, training_examples
from ailedger.factory import checkpoints
from ailedger.factory.adapters import validate_adapter
from ailedger.factory.basemodel import BaseModel
from ailedger.factory.data import IGNORE, Example, collate, record_text
from ailedger.serving.lexical import BM25

F64 = npt.NDArray[np.float64]
Progress = Callable[[str, int, int | None], None]
TRAK_BATCH = 64  # records per featurize call: the dense projector is regenerated once per call
DAMPING = 0.1  # ridge as a fraction of the mean eigenvalue of Phi^T Phi, as the engine's influence


def bm25_scores(records: Sequence[dict[str, Any]], queries: Sequence[str]) -> F64:
    """BM25 score of every record (columns) for every query (rows); 0 where no word is shared."""
    index = BM25([record_text(r) for r in records])
    out = np.zeros((len(queries), len(records)), np.float64)
    for row, query in enumerate(queries):
        docs, scores = index.scores(query)
        out[row, docs] = scores
    return out


# -- TRAK --------------------------------------------------------------------------------------------------

def _token_probs(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Probability of each next token and the mask of supervised positions (shifted as the loss shifts)."""
    shift, target = logits[:, :-1, :].float(), labels[:, 1:]
    mask = target != IGNORE
    logp = torch.log_softmax(shift, dim=-1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return logp, mask


class LanguageModelOutput(AbstractModelOutput):  # type: ignore[misc]  # traker ships no type hints
    """f(z) = sum over supervised tokens of log(p / (1 - p)); Q = 1 - mean p (TRAK's choice for language models)."""

    def __init__(self) -> None:
        super().__init__()

    def get_output(self, model: nn.Module, weights: Any, buffers: Any, input_ids: Tensor, attention_mask: Tensor,
                   labels: Tensor) -> Tensor:
        logits = model(input_ids=input_ids, attention_mask=attention_mask)
        logp, mask = _token_probs(logits, labels)
        # log(p / (1 - p)) = log p - log(1 - p), computed stably from log p
        log_odds = logp - torch.log1p(-torch.exp(logp).clamp(max=1 - 1e-6))
        return (log_odds * mask).sum(dim=-1)

    def get_out_to_loss_grad(self, model: nn.Module, weights: Any, buffers: Any, batch: Iterable[Tensor]) -> Tensor:
        input_ids, attention_mask, labels = batch
        with torch.no_grad():
            logp, mask = _token_probs(model(input_ids=input_ids, attention_mask=attention_mask), labels)
            p = (torch.exp(logp) * mask).sum(-1) / mask.sum(-1).clamp(min=1)
        return (1 - p).unsqueeze(-1)


class _LoraView(nn.Module):
    """The adapted model seen through its LoRA matrices only (in name order), for TRAK's parameter walks."""

    peft: nn.Module

    def __init__(self, grads: LoraGradients) -> None:
        super().__init__()
        object.__setattr__(self, "peft", grads.model)  # not a submodule: its base weights stay out of parameters()
        self.names = list(grads.params)
        self.lora = nn.ParameterList([grads.params[n] for n in self.names])

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        logits: Tensor = self.peft(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits

    def state_of(self, ckpt_tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        """A checkpoint's LoRA tensors as this view's state dict."""
        return {f"lora.{i}": ckpt_tensors[n] for i, n in enumerate(self.names)}


class _PerRecordGradients(AbstractGradientComputer):  # type: ignore[misc]  # traker ships no type hints
    """Per-example gradients of the model output, one unpadded example at a time (see the module docstring)."""

    def __init__(self, model: nn.Module, task: AbstractModelOutput, grad_dim: int, dtype: torch.dtype,
                 device: torch.device, grad_wrt: Iterable[str] | None = None) -> None:
        super().__init__(model, task, grad_dim, dtype, device)
        self.load_model_params(model)

    def load_model_params(self, model: nn.Module) -> None:
        self.model = model
        self.params = list(model.parameters())

    def compute_per_sample_grad(self, batch: Sequence[Tensor]) -> Tensor:
        input_ids, attention_mask, labels = batch
        out = torch.zeros(input_ids.shape[0], self.grad_dim)
        for row in range(input_ids.shape[0]):
            n = int(attention_mask[row].sum())
            one = (input_ids[row:row + 1, :n], attention_mask[row:row + 1, :n], labels[row:row + 1, :n])
            with torch.enable_grad():
                value = self.modelout_fn.get_output(self.model, None, None, *one).sum()
                grads = torch.autograd.grad(value, self.params, allow_unused=True)
            out[row] = torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                                  for g, p in zip(grads, self.params, strict=True)])
        return out

    def compute_loss_grad(self, batch: Sequence[Tensor]) -> Tensor:
        result: Tensor = self.modelout_fn.get_out_to_loss_grad(self.model, None, None, batch)
        return result


@contextmanager
def _quiet_trak() -> Iterator[None]:
    """TRAK's finalising loops draw tqdm bars on stderr, which would tear the CLI's Rich bars; silence them."""
    saved = trak.traker.tqdm

    def quiet(*args: Any, **kwargs: Any) -> Any:
        return saved(*args, **{**kwargs, "disable": True})

    trak.traker.tqdm = quiet
    try:
        yield
    finally:
        trak.traker.tqdm = saved


def _batches(examples: Sequence[Example], pad: int) -> Iterable[tuple[int, tuple[Tensor, Tensor, Tensor]]]:
    for lo in range(0, len(examples), TRAK_BATCH):
        b = collate(list(examples[lo:lo + TRAK_BATCH]), pad)
        yield lo, (b["input_ids"], b["attention_mask"], b["labels"])


def trak_scores(adapter_dir: Path | str, base: BaseModel, records: Sequence[dict[str, Any]],
                queries: Sequence[tuple[Sequence[int], Sequence[int]]], work_dir: Path | str, k: int = 2048,
                seed: int = 0, progress: Progress | None = None) -> F64:
    """TRAK scores (queries x records) of each (prompt ids, answer ids) against the snapshot's records.

    Records are encoded exactly as training saw them (ids and labels), answers with the prompt
    masked out of the labels, as the engine's queries are. `work_dir` holds TRAK's memory-mapped
    store and is emptied first.
    """
    tick = progress or (lambda stage, done, total: None)
    info = validate_adapter(adapter_dir, base.info)
    ckpts = adapter_checkpoints(info)
    grads = LoraGradients(base, info, optimizer_correction=False)
    view = _LoraView(grads)
    pad = grads.pad
    found = training_examples(records, base, info.card)
    empty = Example([pad, pad], [IGNORE, IGNORE])  # a record training skipped: zero gradient, as the engine's
    examples = [e if e is not None else empty for e in found]
    targets = [Example([*p, *a], [IGNORE] * len(p) + list(a)) for p, a in queries]
    store = Path(work_dir)
    shutil.rmtree(store, ignore_errors=True)
    logging.getLogger("TRAK").setLevel(logging.WARNING)
    traker = TRAKer(model=view, task=LanguageModelOutput(), train_set_size=len(examples), save_dir=str(store),
                    load_from_save_dir=True, device="cpu", gradient_computer=_PerRecordGradients, proj_dim=k,
                    projector_seed=seed, use_half_precision=False, logging_level=logging.WARNING)
    states = [view.state_of(load_file(str(c.path / checkpoints.ADAPTER_FILE))) for c in ckpts]
    total, done = len(ckpts) * (len(examples) + len(targets)), 0
    tick("trak", 0, total)
    for model_id, state in enumerate(states):
        traker.load_checkpoint(state, model_id=model_id)
        for _, batch in _batches(examples, pad):
            traker.featurize(batch=batch, num_samples=batch[0].shape[0])
            done += batch[0].shape[0]
            tick("trak", done, total)
    traces = []  # the engine's relative damping (module docstring), one value for all checkpoints: TRAK
    for model_id in range(len(states)):  # finalises them in one call (a second call frees its projector twice)
        traker.saver.load_current_store(model_id)
        phi = np.asarray(traker.saver.current_store["grads"], np.float64)
        traces.append(float(np.einsum("ij,ij->", phi, phi)) / k)
    traker.score_computer.lambda_reg = DAMPING * float(np.mean(traces))
    with _quiet_trak():
        traker.finalize_features(model_ids=list(range(len(states))))
    for model_id, state in enumerate(states):
        traker.start_scoring_checkpoint(exp_name="answers", checkpoint=state, model_id=model_id,
                                        num_targets=len(targets))
        for _, batch in _batches(targets, pad):
            traker.score(batch=batch, num_samples=batch[0].shape[0])
            done += batch[0].shape[0]
            tick("trak", done, total)
    with _quiet_trak():
        scores = np.asarray(traker.finalize_scores(exp_name="answers"), np.float64)  # records x targets
    return np.ascontiguousarray(scores.T)
