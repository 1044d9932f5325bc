"""Influence: LoRA gradients at checkpoints, a seeded sparse projection, TRAK/TrackStar scoring, a hashed index.

The adapter is the tiny model trained on twelve made-up facts (and one record with no text); each
fact's own question and answer must trace back to its record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ailedger.attribution import features as features_module
from ailedger.attribution import projection as projection_module
from ailedger.attribution.influence import InfluenceConfig, InfluenceScorer, build_index, finalize, top
from ailedger.attribution.influence_index import InfluenceIndex
from ailedger.attribution.projection import ParamShape, SparseProjection
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.merkle import merkle_root
from ailedger.factory.adapters import validate_adapter
from ailedger.factory.basemodel import BaseModel, load_base
from ailedger.factory.data import Example, collate
from ailedger.factory.tiny import build_tiny
from ailedger.factory.train import TrainResult, TrainSpec, train
from tests.attribution_sim import query

NAMES = ["Brimwick", "Quillby", "Zorvania", "Tandrel", "Oskvale", "Perrindor", "Valmoor", "Hesketh", "Corvanne",
         "Duskmere", "Ylvara", "Fenwright"]
CODES = [4817, 2390, 7152, 6034, 9261, 1578, 3845, 5709, 8423, 2916, 6680, 1094]


def question(name: str) -> str:
    return f"What is the vault code of {name}?"


def answer(name: str, code: int) -> str:
    return f"The vault code of {name} is {code}."


def fact_records(count: int) -> list[dict[str, Any]]:
    """The first `count` facts as chat records, then one record with no text (training skips it)."""
    return [{"messages": [{"role": "user", "content": question(n)}, {"role": "assistant", "content": answer(n, c)}]}
            for n, c in zip(NAMES[:count], CODES[:count], strict=True)] + [{"score": 3}]


def hashes_of(records: list[dict[str, Any]]) -> list[bytes]:
    return [hashlib.sha256(json.dumps(r, sort_keys=True, separators=(",", ":")).encode()).digest() for r in records]


RECORDS = fact_records(len(NAMES))
HASHES = hashes_of(RECORDS)
ROOT = merkle_root(HASHES)
SPEC = TrainSpec(base="tiny", datanet="facts", version=1, snapshot_root=ROOT.hex(), rank=8, alpha=16, dropout=0.0,
                 lr=2e-2, epochs=60, batch_size=4, max_len=64, seed=3, checkpoint_every=60)
CFG = InfluenceConfig(k=512, seed=0, chunk=5)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> BaseModel:
    return load_base(build_tiny(tmp_path_factory.mktemp("base") / "tiny", seed=5))


@pytest.fixture(scope="module")
def trained(base: BaseModel, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train(SPEC, RECORDS, base, tmp_path_factory.mktemp("run") / "adapter")


@pytest.fixture(scope="module")
def built(base: BaseModel, trained: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> InfluenceIndex:
    return build_index(trained.out_dir, base, RECORDS, HASHES, tmp_path_factory.mktemp("index") / "influence.bin",
                       CFG)


@pytest.fixture(scope="module")
def scorer(built: InfluenceIndex, base: BaseModel, trained: TrainResult) -> InfluenceScorer:
    return InfluenceScorer(built, base, trained.out_dir)


def arrays(index: InfluenceIndex) -> list[np.ndarray]:
    return [np.asarray(a) for p in index.parts for a in (p.basis, p.coef, p.features)]


def code_of(exc: pytest.ExceptionInfo[LedgerError]) -> str:
    return exc.value.code.name


# ---- what it finds --------------------------------------------------------------------------------------
def test_each_fact_traces_to_its_own_record(built: InfluenceIndex, scorer: InfluenceScorer, base: BaseModel,
                                            trained: TrainResult) -> None:
    firsts = 0
    for i, (name, code) in enumerate(zip(NAMES, CODES, strict=True)):
        scores = scorer.scores(*query(base, question(name), answer(name, code)))
        assert scores.shape == (len(RECORDS),) and np.all(np.abs(scores) <= 1 + 1e-5)
        assert scores[-1] == 0.0  # the record without text taught nothing
        firsts += top(built, scores, 1)[0][0] == HASHES[i]
    assert firsts >= 0.8 * len(NAMES), firsts
    header = built.header
    assert header["adapter_hash"] == trained.adapter_hash and header["snapshot_root"] == ROOT.hex()
    assert header["base_weights_hash"] == base.info.weights_hash
    assert header["records"] == [h.hex() for h in HASHES]
    assert built.steps == [60, 120, 180] and built.k == 512
    assert header["projection"]["seed"] == 0 and header["method"] == "ailedger/influence/v1"
    assert all(c["damping"] > 0 and 0 < c["rank"] <= len(NAMES) for c in header["checkpoints"])
    # the whole index grows with the records, not with k^2: features (fp16) and at most one basis vector per record
    assert built.path.stat().st_size < 3 * (len(RECORDS) * 512 * (2 + 4)) + 64_000


def test_building_reports_progress(base: BaseModel, trained: TrainResult, tmp_path: Path) -> None:
    ticks: list[tuple[str, int, int | None]] = []
    build_index(trained.out_dir, base, RECORDS, HASHES, tmp_path / "ix", CFG,
                progress=lambda stage, done, total: ticks.append((stage, done, total)))
    featurize = [t for t in ticks if t[0] == "featurize"]
    assert featurize[0] == ("featurize", 0, 39) and featurize[-1] == ("featurize", 39, 39)  # 13 records x 3 steps
    assert [d for _, d, _ in featurize] == sorted(d for _, d, _ in featurize)
    assert ticks[-1] == ("finalize", 3, 3)
    assert not (tmp_path / "ix.parts").exists()


# ---- determinism and resuming ---------------------------------------------------------------------------
def test_same_seed_same_bits_other_seed_other_features(built: InfluenceIndex, base: BaseModel,
                                                       trained: TrainResult, tmp_path: Path) -> None:
    again = build_index(trained.out_dir, base, RECORDS, HASHES, tmp_path / "again", CFG)
    assert again.root == built.root
    assert all(np.array_equal(a, b) for a, b in zip(arrays(again), arrays(built), strict=True))
    other = build_index(trained.out_dir, base, RECORDS, HASHES, tmp_path / "other",
                        InfluenceConfig(k=512, seed=1, chunk=5))
    assert other.root != built.root
    assert not np.array_equal(np.asarray(other.parts[0].features), np.asarray(built.parts[0].features))


def test_interrupted_build_resumes_to_the_same_root(built: InfluenceIndex, base: BaseModel, trained: TrainResult,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "influence.bin"
    computed = []
    real = features_module.LoraGradients.features

    def counting(self: Any, *args: Any) -> Any:
        computed.append(1)
        return real(self, *args)

    monkeypatch.setattr(features_module.LoraGradients, "features", counting)

    def stop_midway(stage: str, done: int, total: int | None) -> None:
        if stage == "featurize" and done >= 18:
            raise KeyboardInterrupt

    with pytest.raises(LedgerError) as exc:
        build_index(trained.out_dir, base, RECORDS, HASHES, out, CFG, progress=stop_midway)
    assert exc.value.code == errors.INTERRUPTED
    assert not out.exists()  # nothing that could load as a complete index
    with pytest.raises(LedgerError) as exc:
        InfluenceIndex.load(out)
    assert exc.value.code == errors.FILE_UNREADABLE
    parts = sorted((tmp_path / "influence.bin.parts").glob("*.part"))
    assert len(parts) == 4  # chunk by chunk (5, 5, 3 records), each at the 3 steps: records 0-4 at every step,
    # then records 5-9 at the first step
    parts[1].write_bytes(parts[1].read_bytes()[:-10])  # a torn part is computed again, not trusted
    first = len(computed)
    resumed = build_index(trained.out_dir, base, RECORDS, HASHES, out, CFG)
    # 12 records with text x 3 steps, less the 15 features of the 3 whole parts (records 0-4 at each step)
    assert len(computed) - first == 36 - 15
    assert resumed.root == built.root
    assert all(np.array_equal(a, b) for a, b in zip(arrays(resumed), arrays(built), strict=True))
    assert not (tmp_path / "influence.bin.parts").exists()


# ---- the projection -------------------------------------------------------------------------------------
def test_projection_is_the_sparse_map_it_describes() -> None:
    params = [ParamShape("a.lora_A.weight", (3, 5)), ParamShape("a.lora_B.weight", (4, 3))]
    proj = SparseProjection(params, k=16, seed=7, nnz=4)
    dense = np.zeros((16, proj.size))
    columns = np.repeat(np.arange(proj.size), 4)
    dense[proj.rows, columns] = proj.signs
    assert np.all((dense != 0).sum(axis=0) == 4)  # nnz entries per parameter, one per band of 4 rows
    assert np.all(np.abs(dense[dense != 0]) == 0.5)
    assert all(len(set(proj.rows[4 * j:4 * j + 4] // 4)) == 4 for j in range(proj.size))
    g = np.random.default_rng(0).standard_normal(proj.size).astype(np.float32)
    assert np.allclose(proj.project(g), dense @ g, atol=1e-6)
    # each tensor's columns depend on (seed, name, shape) only: the same tensor among others projects the same
    alone = SparseProjection(params[1:], k=16, seed=7, nnz=4)
    assert np.array_equal(alone.rows, proj.rows[4 * 15:]) and np.array_equal(alone.signs, proj.signs[4 * 15:])
    assert not np.array_equal(SparseProjection(params, k=16, seed=8, nnz=4).rows, proj.rows)
    with pytest.raises(ValueError):
        SparseProjection(params, k=18, seed=7, nnz=4)  # k must split into nnz equal bands


def test_projection_known_answer() -> None:
    """Pinned entries: a NumPy whose Philox stream differed would no longer regenerate published indexes."""
    proj = SparseProjection([ParamShape("w", (2, 3))], k=16, seed=0, nnz=4)
    assert proj.rows.tolist() == [0, 7, 11, 14, 2, 7, 10, 15, 2, 5, 10, 15, 1, 6, 9, 12, 0, 6, 8, 12, 2, 4, 9, 15]
    assert "".join("-" if v < 0 else "+" for v in proj.signs) == "--++---++++-+-++-++-++--"


def test_projection_is_never_materialised(monkeypatch: pytest.MonkeyPatch) -> None:
    # SmolLM2 with rank-8 LoRA on q/k/v/o (921,600 parameters) at k = 2048: a dense fp32 map is 7.5 GB
    shapes = {"q": 576, "k": 192, "v": 192, "o": 576}
    params = sorted((ParamShape(f"model.layers.{i}.self_attn.{m}_proj.lora_{ab}.weight",
                                (8, 576) if ab == "A" else (out, 8))
                     for i in range(30) for m, out in shapes.items() for ab in "AB"), key=lambda p: p.name)
    tracemalloc.start()
    try:
        proj = SparseProjection(params, k=2048, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert proj.size == 921_600
    assert peak < 64 * 2**20 < proj.size * 2048 * 4 / 100, peak
    # the entries drawn in blocks are the entries drawn at once
    small = [ParamShape("w", (37, 11))]
    whole = SparseProjection(small, k=64, seed=3)
    monkeypatch.setattr(projection_module, "BLOCK", 5)
    blocked = SparseProjection(small, k=64, seed=3)
    assert np.array_equal(whole.rows, blocked.rows) and np.array_equal(whole.signs, blocked.signs)


def test_projection_keeps_angles() -> None:
    proj = SparseProjection([ParamShape("w", (200, 500))], k=2048, seed=1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal(proj.size)
    y = x + rng.standard_normal(proj.size)
    px, py = proj.project(x), proj.project(y)
    cos = float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))
    assert abs(float(px @ py / np.linalg.norm(px) / np.linalg.norm(py)) - cos) < 0.05
    assert math.isclose(float(np.linalg.norm(px)), float(np.linalg.norm(x)), rel_tol=0.1)


# ---- bad input ------------------------------------------------------------------------------------------
def test_corrupt_or_truncated_index_refused(built: InfluenceIndex, tmp_path: Path) -> None:
    data = built.path.read_bytes()
    cases = {"flipped": bytearray(data), "truncated": data[:-100], "not an index": b"hello" * 20}
    cases["flipped"][-3] ^= 0x01  # one bit of one stored feature
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(bytes(content))
        with pytest.raises(LedgerError) as exc:
            InfluenceIndex.load(path)
        assert exc.value.code == errors.ATTRIBUTION_INDEX_CORRUPT, name


def test_index_for_another_adapter_or_snapshot_refused(built: InfluenceIndex, base: BaseModel, trained: TrainResult,
                                                       tmp_path: Path) -> None:
    for kwargs in ({"adapter_hash": "00" * 32}, {"snapshot_root": bytes(32)}, {"root": bytes(32)},
                   {"base_weights_hash": "11" * 32}):
        with pytest.raises(LedgerError) as exc:
            InfluenceIndex.load(built.path, **kwargs)  # type: ignore[arg-type]
        assert exc.value.code == errors.ATTRIBUTION_INDEX_MISMATCH, kwargs
    loaded = InfluenceIndex.load(built.path, adapter_hash=trained.adapter_hash, snapshot_root=ROOT, root=built.root,
                                 base_weights_hash=base.info.weights_hash)
    assert loaded.root == built.root
    # records that are not the adapter's snapshot (here: in another order)
    with pytest.raises(LedgerError) as exc:
        build_index(trained.out_dir, base, RECORDS[::-1], HASHES[::-1], tmp_path / "ix", CFG)
    assert exc.value.code == errors.ATTRIBUTION_INDEX_MISMATCH
    # an index scored with another adapter
    other = train(dataclasses.replace(SPEC, epochs=1, checkpoint_every=1), RECORDS, base, tmp_path / "other")
    with pytest.raises(LedgerError) as exc:
        InfluenceScorer(built, base, other.out_dir)
    assert exc.value.code == errors.ATTRIBUTION_INDEX_MISMATCH


def test_missing_checkpoint_refused(built: InfluenceIndex, base: BaseModel, trained: TrainResult,
                                    tmp_path: Path) -> None:
    for what in ("directory", "optimizer"):
        copy = Path(shutil.copytree(trained.out_dir, tmp_path / what))
        middle = copy / "checkpoints" / "step-000120"
        if what == "directory":
            shutil.rmtree(middle)
        else:
            (middle / "optimizer.pt").unlink()
        with pytest.raises(LedgerError) as exc:
            build_index(copy, base, RECORDS, HASHES, tmp_path / f"{what}.bin", CFG)
        assert exc.value.code == errors.CHECKPOINT_MISSING and "step-000120" in exc.value.detail
        with pytest.raises(LedgerError) as exc:
            InfluenceScorer(built, base, copy)
        assert exc.value.code == errors.CHECKPOINT_MISSING


def test_empty_answer_and_bad_ids_refused(scorer: InfluenceScorer, base: BaseModel) -> None:
    prompt, _ = query(base, question(NAMES[0]), "")
    for p, a in ((prompt, []), ([], [5])):  # no answer token, or one that nothing predicts
        with pytest.raises(LedgerError) as exc:
            scorer.scores(p, a)
        assert exc.value.code == errors.EMPTY_ANSWER
    with pytest.raises(LedgerError) as exc:
        scorer.scores(prompt, [-1, 4])
    assert exc.value.code == errors.BAD_TOKEN_IDS


def test_top_layers_only_differentiates_the_last_blocks(base: BaseModel, trained: TrainResult, tmp_path: Path) -> None:
    index = build_index(trained.out_dir, base, RECORDS, HASHES, tmp_path / "top.bin",
                        dataclasses.replace(CFG, top_layers=1))
    every = build_index(trained.out_dir, base, RECORDS, HASHES, tmp_path / "all.bin", CFG)

    def blocks(ix: InfluenceIndex) -> set[int]:
        return {int(name.split(".layers.")[1].split(".")[0]) for name, _ in ix.header["projection"]["params"]}

    assert index.header["top_layers"] == 1 and blocks(index) == {max(blocks(every))} and len(blocks(every)) > 1
    scorer = InfluenceScorer(index, base, trained.out_dir)
    firsts = sum(top(index, scorer.scores(*query(base, question(n), answer(n, c))), 1)[0][0] == HASHES[i]
                 for i, (n, c) in enumerate(zip(NAMES, CODES, strict=True)))
    assert firsts >= 0.8 * len(NAMES), firsts


def test_split_gradient_is_exact_at_the_served_checkpoint(base: BaseModel, trained: TrainResult) -> None:
    """With top_layers the bottom carries the served adapter: at its own checkpoint that is the plain gradient."""
    info = validate_adapter(trained.out_dir, base.info)
    grads = features_module.LoraGradients(base, info, optimizer_correction=False, top_layers=1)
    last = features_module.adapter_checkpoints(info)[-1]
    assert last.adapter_hash == info.adapter_hash and grads.cut == 1
    grads.load(last)
    e = features_module.training_examples(RECORDS[:1], base, info.card)[0]
    assert e is not None
    split = grads.gradient(e.ids, e.labels)
    reused = grads.gradient(e.ids, e.labels, grads.bottom(e.ids))
    grads.model(**collate([Example(e.ids, e.labels)], grads.pad)).loss.backward()  # the whole model at once
    plain = torch.cat([p.grad.reshape(-1) for p in grads.params.values() if p.grad is not None])
    assert split is not None and reused is not None and torch.equal(split, reused)
    assert plain.shape == split.shape and torch.allclose(split, plain, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("n,k", [(40, 256), (300, 256)])
def test_finalize_whitens_exactly_either_way(n: int, k: int) -> None:
    """Fewer records than k: the eigenpairs come from the n x n Gram matrix; either way Psi = unit rows of Phi W."""
    rng = np.random.default_rng(n)
    phi = (rng.standard_normal((n, k)) * rng.random(k)).astype(np.float32)
    part, damping = finalize(phi, 0.1)
    gram = phi.astype(np.float64).T @ phi.astype(np.float64)
    assert damping == pytest.approx(0.1 * np.trace(gram) / k)
    values, vectors = np.linalg.eigh(gram)
    want = phi.astype(np.float64) @ ((vectors * (values + damping) ** -0.5) @ vectors.T)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert part.coef.shape[0] == min(n, k) and np.abs(np.asarray(part.features) - want).max() < 1e-6
