"""`ailedger attribution eval`: the whole loop on a facts file, and how well each method traces the facts.

The loop (`run_eval`):

1. **Datanet.** Every paraphrase of every fact becomes one record of its owner: a chat exchange in
   which the user asks the fact's question and the assistant answers with the paraphrase; every
   extra record becomes a plain-text record `{"text"}` of its owner. They are contributed, accepted
   and frozen as version 1 on a real embedded node (`evalchain.py`); the snapshot's records, order and
   contributors are read back from the ledger.
2. **Adapter.** A LoRA adapter of the base is fine-tuned on the snapshot (`factory.train`, loss on
   the assistant's turns, so a fact record teaches its answer and a plain-text record its own words).
3. **Bundle.** The attribution bundle (influence and span indexes) is built for it (`build_bundle`).
4. **Answers.** Each fact's question goes through the serving engine (greedy, the adapter in a LoRA
   slot), one at a time so that each answer's generation time is its own.
5. **Attribution.** Each answer is attributed by the engine (`Attributor`: its combined score, and
   its influence signal alone), by BM25 (query = prompt + answer) and by TRAK (`baselines.py`).

The figures, per method, over the facts whose answer is non-empty (an empty answer counts as a miss):

- `top1`: the contributor paid most for the answer is the fact's owner;
- `mrr`: mean reciprocal rank of the right record, where any of the fact's paraphrase records
  counts as right (rank 1 + the wrong records scored higher + half the wrong records scored equal);
- `owner_share` and `extra_share`: of all basis points paid over the answers, the part paid to the
  asking fact's owner, and the part paid to owners who hold only extra records (the stuffers);
  every method's scores become payouts by the same rule, `combine.shares_from_scores`.

Costs: the attribution time of an answer (scores and record) over its generation time, and the
bundle's bytes per record.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ailedger.attribution.attributor import Attributor, build_bundle, bundle_dir
from ailedger.attribution.baselines import bm25_scores, trak_scores
from ailedger.attribution.combine import shares_from_scores
from ailedger.attribution.evalchain import DATANET, Snapshot, build_snapshot, owner_key
from ailedger.attribution.facts import Extra, Fact
from ailedger.attribution.influence import InfluenceConfig, chunk_for
from ailedger.chain.runtime import Runtime
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.workdir import fresh_dir
from ailedger.datanet.gates.records import record_hash
from ailedger.factory.basemodel import BaseModel, load_base
from ailedger.factory.train import TrainSpec, train
from ailedger.serving.catalog import Catalog
from ailedger.serving.engine import Request
from ailedger.serving.openai_api import default_stop_ids
from ailedger.serving.stack import build_stack, served_base

if TYPE_CHECKING:
    from ailedger.cluster import Cluster

Progress = Callable[[str, int, int | None], None]
F64 = npt.NDArray[np.float64]
ADAPTER = "facts-lora"
MARKER = ".ailedger-eval"
METHODS = ("engine", "influence", "bm25", "trak")


@dataclass(frozen=True)
class EvalConfig:
    """The fine-tune and the attribution settings of one evaluation (all reported with its figures)."""

    base: str = "smollm2"  # `smollm2` or a model directory
    rank: int = 8
    alpha: int = 16
    lr: float = 5e-3
    epochs: int = 8
    batch_size: int = 2  # many small steps: what makes a LoRA memorise made-up names, at the same compute
    max_len: int = 128
    seed: int = 0
    checkpoints: int = 2  # saved checkpoints the influence signal (and TRAK) ensemble over
    k: int = 2048  # projection dimension of the engine's influence and of TRAK
    top_layers: int | None = None  # the engine differentiates only the last N blocks' LoRA tensors (0: all;
    # None: the engine's default, `InfluenceConfig.top_layers`); TRAK always takes every LoRA tensor
    max_answer_tokens: int = 40
    trak: bool = True


def fact_record(fact: Fact, paraphrase: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": fact.question}, {"role": "assistant", "content": paraphrase}]}


def prompt_ids(base: BaseModel, question: str) -> list[int]:
    ids: Any = base.tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                                  add_generation_prompt=True, tokenize=True, return_dict=False)
    return [int(t) for t in ids]


def right_rank(scores: F64, right: Sequence[int]) -> float:
    """Rank of the best-scored right record: 1 + wrong records above it + half the wrong records tied with it."""
    if not right:
        return math.inf
    best = float(np.max(scores[list(right)]))
    wrong = np.ones(len(scores), bool)
    wrong[list(right)] = False
    return 1 + float(np.sum(scores[wrong] > best)) + 0.5 * float(np.sum(scores[wrong] == best))


@dataclass
class _Tally:
    """One method's running figures over the answers."""

    hits: int = 0
    rr: float = 0.0
    paid: int = 0  # basis points paid over all answers
    to_owner: int = 0
    to_extra: int = 0
    answers: int = 0
    by_label: dict[str, int] | None = None

    def add(self, scores: F64, right: Sequence[int], owner: bytes, hashes: Sequence[bytes],
            contributors: Mapping[bytes, bytes], labels: Mapping[bytes, str], extra_only: set[bytes]) -> str | None:
        self.answers += 1
        self.rr += 1 / right_rank(scores, right)
        shares = shares_from_scores(hashes, scores, contributors)
        top = shares.shares[0].key if shares.shares and shares.shares[0].bps > 0 else None
        self.hits += top == owner
        self.by_label = self.by_label if self.by_label is not None else {}
        for s in shares.shares:
            self.paid += s.bps
            self.to_owner += s.bps if s.key == owner else 0
            self.to_extra += s.bps if s.key in extra_only else 0
            self.by_label[labels[s.key]] = self.by_label.get(labels[s.key], 0) + s.bps
        return labels[top] if top is not None else None

    def miss(self) -> None:
        self.answers += 1

    def figures(self) -> dict[str, Any]:
        n, paid = max(self.answers, 1), max(self.paid, 1)
        return {"top1": self.hits / n, "mrr": self.rr / n, "owner_share": self.to_owner / paid,
                "extra_share": self.to_extra / paid, "paid_bp": self.paid,
                "shares": {k: v / paid for k, v in sorted((self.by_label or {}).items())}}


def _contributions(facts: Sequence[Fact], extra: Sequence[Extra]) -> list[tuple[str, dict[str, Any]]]:
    out = [(f.owner, fact_record(f, p)) for f in facts for p in f.paraphrases]
    return out + [(e.owner, {"text": e.text}) for e in extra]


def _train(snapshot: Snapshot, base: BaseModel, cfg: EvalConfig, out: Path, tick: Progress) -> dict[str, Any]:
    n = len(snapshot.records)
    steps = cfg.epochs * math.ceil(n / cfg.batch_size)
    spec = TrainSpec(base=base.info.name, datanet=DATANET, version=1, snapshot_root=snapshot.root.hex(),
                     rank=cfg.rank, alpha=cfg.alpha, dropout=0.0, lr=cfg.lr, epochs=cfg.epochs,
                     batch_size=cfg.batch_size, max_len=cfg.max_len, seed=cfg.seed,
                     checkpoint_every=max(1, math.ceil(steps / cfg.checkpoints)))
    t = time.perf_counter()
    result = train(spec, snapshot.records, base, out, on_step=lambda s, total, loss: tick("train", s, total),
                   resume=False)
    return {"steps": result.steps, "final_loss": result.final_loss, "train_s": time.perf_counter() - t,
            "checkpoints": len(result.card["checkpoints"])}


def _generate(base: BaseModel, adapter_root: Path, prompts: Sequence[list[int]], max_tokens: int,
              tick: Progress) -> list[tuple[list[int], float]]:
    """Each prompt answered alone through the serving engine (greedy): (answer ids without the stop token, seconds)."""
    serving = BaseModel(base.info, copy.deepcopy(base.model), base.tokenizer)  # slots are injected in place
    catalog = Catalog.from_directory(served_base(serving), adapter_root)
    adapter = catalog.resolve(ADAPTER).adapter_id
    stack = build_stack(serving, catalog, max_batch=1)
    stops = default_stop_ids(base.tokenizer)
    out = []
    try:
        stack.engine.generate([Request(prompts[0], 2, adapter)])  # load the adapter into its slot before timing
        for i, p in enumerate(prompts):
            t = time.perf_counter()
            (gen,) = stack.engine.generate([Request(p, max_tokens, adapter, stop_ids=stops)])
            elapsed = time.perf_counter() - t
            if gen.error is not None:
                raise gen.error
            out.append(([tok for tok in gen.tokens if tok not in stops], elapsed))
            tick("generate", i + 1, len(prompts))
    finally:
        stack.close()
    return out


def run_eval(facts: Sequence[Fact], extra: Sequence[Extra], work_dir: Path | str, runtime: Runtime,
             config: EvalConfig | None = None, progress: Progress | None = None,
             base: BaseModel | None = None, cluster: Cluster | None = None) -> dict[str, Any]:
    """Run the loop of the module docstring in `work_dir` (emptied first); returns the report (JSON-ready).

    With a `cluster` the influence index's gradients are extracted by Ray tasks (the same index)."""
    cfg = config or EvalConfig()
    tick = progress or (lambda stage, done, total: None)
    if not facts:
        raise LedgerError(errors.BAD_FACTS_FILE, "no facts to evaluate")
    work = fresh_dir(Path(work_dir), MARKER, "ailedger attribution eval work directory; emptied by the next run\n",
                     "is not an earlier eval's work directory and not empty; give a new or empty directory (it is "
                     "emptied before each run)")
    tick("ledger", 0, 1)
    snapshot = build_snapshot(work / "chain", runtime, _contributions(facts, extra))
    tick("ledger", 1, 1)
    loaded = base if base is not None else load_base(cfg.base, progress=tick)
    adapter_dir = work / "adapters" / ADAPTER
    training = _train(snapshot, loaded, cfg, adapter_dir, tick)

    t = time.perf_counter()
    icfg = replace(_influence_config(cfg), chunk=chunk_for(len(snapshot.records), cluster))
    build_bundle(adapter_dir, loaded, snapshot.records, snapshot.record_hashes, snapshot.contributors, icfg,
                 progress=tick, cluster=cluster)
    bundle_s = time.perf_counter() - t
    index_bytes = sum(p.stat().st_size for p in bundle_dir(adapter_dir).iterdir() if p.is_file())

    prompts = [prompt_ids(loaded, f.question) for f in facts]
    answers = _generate(loaded, adapter_dir.parent, prompts, cfg.max_answer_tokens, tick)
    attributor = Attributor.load(adapter_dir, loaded)
    n = len(snapshot.record_hashes)
    scored: list[dict[str, F64] | None] = []
    attr_s: list[float] = []
    for i, (p, (a, _)) in enumerate(zip(prompts, answers, strict=True)):
        if not a:
            scored.append(None)
            continue
        t = time.perf_counter()
        s = attributor.scores(p, a)
        attributor.record(p, a, s)
        attr_s.append(time.perf_counter() - t)
        scored.append({"engine": s.combined, "influence": s.influence})
        tick("attribute", i + 1, len(prompts))
    texts = [str(loaded.tokenizer.decode(a, skip_special_tokens=True)) for a, _ in answers]
    bm25 = bm25_scores(snapshot.records, [f"{f.question} {text}" for f, text in zip(facts, texts, strict=True)])
    kept = [i for i, s in enumerate(scored) if s is not None]
    trak = (trak_scores(adapter_dir, loaded, snapshot.records, [(prompts[i], answers[i][0]) for i in kept],
                        work / "trak", cfg.k, cfg.seed, tick) if cfg.trak and kept else None)
    for j, i in enumerate(kept):
        entry = scored[i]
        assert entry is not None
        entry["bm25"] = bm25[i]
        if trak is not None:
            entry["trak"] = trak[j]
    rows, methods = _figures(facts, extra, snapshot, scored, texts, answers)
    gen_s = [a[1] for a, s in zip(answers, scored, strict=True) if s is not None]
    ratios = [x / g for x, g in zip(attr_s, gen_s, strict=True) if g > 0]
    return {
        "setup": {"base": loaded.info.name, "facts": len(facts), "owners": len({f.owner for f in facts}),
                  "records": n, "fact_records": sum(len(f.paraphrases) for f in facts), "extra_records": len(extra),
                  "extra_owners": len({e.owner for e in extra} - {f.owner for f in facts}),
                  "snapshot_root": snapshot.root.hex(), "config": asdict(cfg),
                  "top_layers": _influence_config(cfg).top_layers,
                  **training, "bundle_s": bundle_s},
        "answers": rows,
        "correct": sum(r["correct"] for r in rows) / len(rows),
        "empty_answers": sum(s is None for s in scored),
        "methods": methods,
        "cost": {"generate_s_mean": _mean(gen_s), "attribute_s_mean": _mean(attr_s),
                 "cost_ratio": _mean(ratios), "index_bytes": index_bytes, "index_bytes_per_record": index_bytes / n},
    }


def _influence_config(cfg: EvalConfig) -> InfluenceConfig:
    default = InfluenceConfig(k=cfg.k, seed=cfg.seed)
    return default if cfg.top_layers is None else replace(default, top_layers=cfg.top_layers)


def _figures(facts: Sequence[Fact], extra: Sequence[Extra], snapshot: Snapshot, scored: Sequence[dict[str, F64] | None],
             texts: Sequence[str], answers: Sequence[tuple[list[int], float]]
             ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each answer's row and each method's figures, over all answers and over those that state their fact."""
    hashes = snapshot.record_hashes
    position = {h: j for j, h in enumerate(hashes)}
    right = [[position[record_hash(fact_record(f, p))] for p in f.paraphrases] for f in facts]
    labels = {owner_key(label).address: label for label in {f.owner for f in facts} | {e.owner for e in extra}}
    fact_owners = {owner_key(f.owner).address for f in facts}
    extra_only = {c for c in labels if c not in fact_owners}
    methods = [m for m in METHODS if any(s is not None and m in s for s in scored)]
    every, stated = {m: _Tally() for m in methods}, {m: _Tally() for m in methods}
    rows = []
    for i, f in enumerate(facts):
        entry = scored[i]
        correct = f.answer.lower() in texts[i].lower()
        row: dict[str, Any] = {"fact": f.id, "owner": f.owner, "question": f.question, "answer": texts[i],
                               "answer_tokens": len(answers[i][0]), "answer_ids": answers[i][0], "correct": correct,
                               "generate_s": answers[i][1], "top": {}}
        for m in methods:
            for tally in (every[m], stated[m]) if correct else (every[m],):
                if entry is None:
                    tally.miss()
                else:
                    row["top"][m] = tally.add(entry[m], right[i], owner_key(f.owner).address, hashes,
                                              snapshot.contributors, labels, extra_only)
        rows.append(row)
    figures = {m: {**every[m].figures(), "stated": {k: v for k, v in stated[m].figures().items() if k != "shares"}
                   | {"answers": stated[m].answers}} for m in methods}
    return rows, figures


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else 0.0
