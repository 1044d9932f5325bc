"""Linear datamodeling score (LDS): do the scores predict what removing records does to an answer?

TRAK's measure of counterfactual quality (Park et al., 2023). Train once on all records and score a
set of target answers with each method. Then draw M random subsets of half the records, train the
same recipe on each (same seed, hyper-parameters and epochs), and measure each target answer's loss
under each subset model. A method predicts the subset's effect on target t as the sum of the scores
of the records it keeps; its LDS on t is the Spearman rank correlation, over the M subsets, between
that prediction and the subset model's log-likelihood of the answer (minus its loss: records that
teach the answer should make it more likely). The LDS is the mean over the targets.

The setup is small on purpose (docs/attribution-eval.md states it): the tiny Llama of
`factory.tiny` and a few dozen records from `facts.generate_facts`, so that the M >= 50 retrainings
take seconds each on two CPU cores. Targets are the facts' questions, each answered by a paraphrase
that no record holds (the generator's next template), so a method must find the records that teach
the fact in other words, not the record that holds the answer verbatim; the answer is fixed, so
every subset model is scored on the same tokens. The engine's
scores (the combined payout score, and the influence signal alone) and TRAK's come from the full
model's checkpoints at the same projection dimension.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from peft import PeftModel, set_peft_model_state_dict
from safetensors.torch import load_file

from ailedger.attribution.attributor import Attributor, build_bundle
from ailedger.attribution.baselines import trak_scores
from ailedger.attribution.evaluate import fact_record, prompt_ids
from ailedger.attribution.facts import generate_facts
from ailedger.attribution.influence import InfluenceConfig
from ailedger.cluster import Cluster, map_ordered, per_worker
from ailedger.core.hashing import sha256
from ailedger.core.merkle import merkle_root
from ailedger.core.workdir import fresh_dir
from ailedger.datanet.gates.records import record_hash
from ailedger.factory import checkpoints
from ailedger.factory.basemodel import BaseModel, load_base
from ailedger.factory.data import IGNORE, Example, collate
from ailedger.factory.tiny import build_tiny
from ailedger.factory.train import TrainSpec, train
from ailedger.factory.worker_base import BaseRef

Progress = Callable[[str, int, int | None], None]
MARKER = ".ailedger-lds"  # marks a work directory as an LDS run's (core.workdir)
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LdsConfig:
    """The LDS setup: the generated Datanet's sizes, the subsets, the tiny model's fine-tune, k for both methods."""

    owners: int = 4
    facts_per_owner: int = 2
    paraphrases: int = 3
    stuffers: int = 2
    stuffer_records: int = 2
    subsets: int = 50
    fraction: float = 0.5
    rank: int = 8
    alpha: int = 16
    lr: float = 0.02
    epochs: int = 12
    batch_size: int = 4
    max_len: int = 96
    checkpoints: int = 2
    k: int = 2048  # the engine's default projection dimension, for both methods
    seed: int = 0
    trak: bool = True
    hidden: int = 64  # the tiny model's width and depth (factory.tiny)
    layers: int = 2


def ranks(values: F64) -> F64:
    """Ranks from 1, ties sharing their average rank (what Spearman's coefficient correlates)."""
    order = np.argsort(values, kind="stable")
    out = np.empty(len(values), np.float64)
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        out[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x: F64, y: F64) -> float:
    """Spearman's rank correlation; 0 when either side is constant (it predicts nothing)."""
    rx, ry = ranks(np.asarray(x, np.float64)), ranks(np.asarray(y, np.float64))
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0:
        return 0.0
    return float(((rx - rx.mean()) * (ry - ry.mean())).mean() / (sx * sy))


def lds(scores: F64, masks: npt.NDArray[np.bool_], outcomes: F64) -> float:
    """Mean over targets of Spearman(sum of kept records' scores, outcome) across subsets.

    `scores` is targets x records, `masks` subsets x records (kept records), `outcomes` subsets x
    targets (the log-likelihood of each target under each subset model).
    """
    predicted = masks.astype(np.float64) @ scores.T  # subsets x targets
    return float(np.mean([spearman(predicted[:, t], outcomes[:, t]) for t in range(scores.shape[0])]))


def _spec(cfg: LdsConfig, hashes: Sequence[bytes], base: BaseModel, n: int) -> TrainSpec:
    steps = cfg.epochs * math.ceil(n / cfg.batch_size)
    return TrainSpec(base=base.info.name, datanet="lds", version=1, snapshot_root=merkle_root(list(hashes)).hex(),
                     rank=cfg.rank, alpha=cfg.alpha, dropout=0.0, lr=cfg.lr, epochs=cfg.epochs,
                     batch_size=cfg.batch_size, max_len=cfg.max_len, seed=cfg.seed,
                     checkpoint_every=max(1, math.ceil(steps / cfg.checkpoints)))


class _AnswerLoss:
    """Log-likelihood of fixed answers under any adapter of one shape, loaded into one PEFT model in turn."""

    def __init__(self, base: BaseModel, adapter_dir: Path, targets: Sequence[tuple[list[int], list[int]]]) -> None:
        self.model = PeftModel.from_pretrained(copy.deepcopy(base.model), str(adapter_dir))
        self.model.eval()
        pad = base.tokenizer.pad_token_id
        self.batch = collate([Example([*p, *a], [IGNORE] * len(p) + a) for p, a in targets],
                             pad if isinstance(pad, int) else 0)

    @torch.no_grad()
    def __call__(self, adapter_dir: Path) -> F64:
        set_peft_model_state_dict(self.model, load_file(str(adapter_dir / checkpoints.ADAPTER_FILE)))
        b = self.batch
        logits = self.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
        labels = b["labels"][:, 1:]
        mask = labels != IGNORE
        logp = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return ((logp * mask).sum(-1) / mask.sum(-1).clamp(min=1)).double().numpy()


@dataclass(frozen=True)
class _Retraining:
    """What one subset retraining needs, wherever it runs: the records, the tiny base, the full model's directory."""

    cfg: LdsConfig
    records: list[dict[str, Any]]
    hashes: list[bytes]
    base: BaseRef
    full_dir: Path
    targets: list[tuple[list[int], list[int]]]
    work: Path


def _outcome(job: _Retraining, m: int, chosen: npt.NDArray[np.int64], base: BaseModel, loss: _AnswerLoss) -> F64:
    """Train the recipe on subset `m` (the records `chosen`) and score every target under it."""
    subset = [job.records[i] for i in chosen]
    out = job.work / f"subset-{m}"
    train(_spec(job.cfg, [job.hashes[i] for i in chosen], base, len(subset)), subset, base, out, resume=False)
    outcome = loss(out)
    shutil.rmtree(out)
    return outcome


def retrain_task(item: tuple[int, npt.NDArray[np.int64]], job: _Retraining) -> F64:
    """One Ray task: a subset retraining, on this worker's copy of the tiny base (loaded once per worker)."""
    def load() -> tuple[BaseModel, _AnswerLoss]:
        base = job.base.resident()
        return base, _AnswerLoss(base, job.full_dir, job.targets)

    base, loss = per_worker(("lds", job.base, job.full_dir), load)
    return _outcome(job, item[0], item[1], base, loss)


def run_lds(work_dir: Path | str, config: LdsConfig | None = None, progress: Progress | None = None,
            cluster: Cluster | None = None) -> dict[str, Any]:
    """The LDS of the engine (combined and influence-only scores) and of TRAK on the setup of the module docstring.

    With a `cluster` the subset retrainings are Ray tasks, one per subset; each is the same
    deterministic training (same subsets, seed and recipe), so the outcomes and the LDS are the same.
    """
    cfg = config or LdsConfig()
    tick = progress or (lambda stage, done, total: None)
    work = fresh_dir(Path(work_dir), MARKER, "ailedger LDS work directory; emptied by the next run\n",
                     "is not an earlier LDS run's work directory and not empty; give a new or empty directory (it "
                     "is emptied before each run)")
    # one paraphrase more than is trained on: the held-out one is each target's answer
    bench = generate_facts(cfg.owners, cfg.facts_per_owner, cfg.paraphrases + 1, cfg.stuffers, cfg.stuffer_records,
                           cfg.seed)
    records = [fact_record(f, p) for f in bench.facts for p in f.paraphrases[:-1]]
    records += [{"text": e.text} for e in bench.stuffers]
    hashes = [record_hash(r) for r in records]
    base = load_base(build_tiny(work / "tiny", seed=cfg.seed, hidden=cfg.hidden, layers=cfg.layers))
    full = work / "full"
    t = time.perf_counter()
    train(_spec(cfg, hashes, base, len(records)), records, base, full,
          on_step=lambda step, total, loss: tick("train", step, total), resume=False)
    train_s = time.perf_counter() - t
    contributors = {h: sha256(h)[:20] for h in hashes}  # LDS looks at records, not at who owns them
    build_bundle(full, base, records, hashes, contributors, InfluenceConfig(k=cfg.k, seed=cfg.seed), tick,
                 cluster=cluster)
    attributor = Attributor.load(full, base)
    # targets: each question answered by the held-out paraphrase ("heldout"), and by its first trained
    # paraphrase ("seen"); both are scored on the same subset models
    sets = {name: [(prompt_ids(base, f.question), [int(t) for t in base.tokenizer.encode(f.paraphrases[i],
                                                                                           add_special_tokens=False)])
                   for f in bench.facts] for name, i in (("heldout", -1), ("seen", 0))}
    targets = sets["heldout"] + sets["seen"]
    engine, influence = [], []
    for p, a in targets:
        s = attributor.scores(p, a)
        engine.append(s.combined)
        influence.append(s.influence)
    methods = {"engine": np.stack(engine), "influence": np.stack(influence)}
    if cfg.trak:
        methods["trak"] = trak_scores(full, base, records, targets, work / "trak", cfg.k, cfg.seed, tick)
    rng = np.random.default_rng(cfg.seed)
    keep = max(1, round(cfg.fraction * len(records)))
    masks = np.zeros((cfg.subsets, len(records)), bool)
    subsets = [np.sort(rng.choice(len(records), size=keep, replace=False)) for _ in range(cfg.subsets)]
    for m, chosen in enumerate(subsets):
        masks[m, chosen] = True
    job = _Retraining(cfg, records, hashes, BaseRef.of(base), full, targets, work)
    outcomes = np.zeros((cfg.subsets, len(targets)), np.float64)
    t = time.perf_counter()
    if cluster is None:
        loss = _AnswerLoss(base, full, targets)
        for m, chosen in enumerate(subsets):
            outcomes[m] = _outcome(job, m, chosen, base, loss)
            tick("lds", m + 1, cfg.subsets)
    else:
        found = map_ordered(retrain_task, list(enumerate(subsets)), job, progress=lambda d, n: tick("lds", d, n))
        outcomes[:] = np.stack(found) if found else outcomes
    retrain_s = (time.perf_counter() - t) / cfg.subsets
    half = len(bench.facts)
    figures = {name: lds(scores[:half], masks, outcomes[:, :half]) for name, scores in methods.items()}
    seen = {name: lds(scores[half:], masks, outcomes[:, half:]) for name, scores in methods.items()}
    (work / "lds.json").write_text(json.dumps({"masks": masks.tolist(), "outcomes": outcomes.tolist()}))
    setup = {**asdict(cfg), "model": f"factory.tiny (hidden {cfg.hidden}, {cfg.layers} layers)",
             "records": len(records), "targets": half, "kept_per_subset": keep, "full_train_s": train_s,
             "retrain_s_mean": retrain_s}
    return {"lds": figures, "lds_seen": seen, "setup": setup}
