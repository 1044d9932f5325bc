"""Training spot checks by segments (provider/spotcheck.py) on the tiny model, with the real trainer and blob store.

The trainer commits to every K-th step; a check re-runs the segments its seed picks from the trainer's
checkpoints. An honest run passes bit for bit; a run whose weights were tampered in one segment fails when that
segment (or the one after it) is drawn; a manifest whose leaves are not under the reported root fails.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from ailedger.chain.blobstore import BlobStore
from ailedger.core.errors import LedgerError
from ailedger.factory import checkpoints
from ailedger.factory.basemodel import BaseModel, load_base
from ailedger.factory.checkpoints import ADAPTER_FILE
from ailedger.factory.tiny import build_tiny
from ailedger.factory.train import TrainSpec, train
from ailedger.provider import spotcheck as sc

RECORDS = [{"text": f"the ledger pays contributor {i} for record {i * 7}"} for i in range(16)]
SPEC = TrainSpec(base="tiny", datanet="toy", version=1, snapshot_root="ab" * 32, rank=4, alpha=8, dropout=0.1,
                 lr=2e-2, epochs=2, batch_size=4, max_len=48, seed=11, checkpoint_every=2)  # 8 steps, 4 boundaries


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> BaseModel:
    return load_base(build_tiny(tmp_path_factory.mktemp("sc") / "tiny", seed=5))


@pytest.fixture(scope="module")
def run(base: BaseModel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("lease") / "lease-1"
    started = time.perf_counter()
    result = train(SPEC, RECORDS, base, out)
    seconds = time.perf_counter() - started
    work = sc.commit(out, result.steps, SPEC.checkpoint_every)
    store = BlobStore(tmp_path_factory.mktemp("blobs"))
    store.put_many(work.blobs)
    return {"out": out, "work": work, "store": store, "train_s": seconds, "steps": result.steps}


def fetch(store: BlobStore) -> sc.Fetch:
    return lambda hex_hash: store.get(bytes.fromhex(hex_hash))


def check_of(work: sc.TrainedWork, cid: int, seed: bytes = b"\x07" * 32, root: bytes | None = None) -> dict[str, Any]:
    """A pending check as the ledger's `checks` view shows it."""
    return {"id": cid, "seed": seed.hex(), "root": (root or work.root).hex(),
            "boundaries": len(work.manifest.boundaries), "manifest": work.manifest_hash.hex(),
            "digest": work.digest.hex()}


def cid_drawing(n: int, want: set[int], avoid: set[int] = frozenset(), seed: bytes = b"\x07" * 32) -> int:
    """A check id whose segments include one of `want` and none of `avoid`."""
    return next(c for c in range(1, 10_000) if set(sc.segments(seed, c, n)) & want
                and not set(sc.segments(seed, c, n)) & avoid)


def tampered(run: dict[str, Any], j: int, tmp: Path) -> sc.TrainedWork:
    """The honest run with boundary j's weights replaced, and every hash and the root recomputed to match: the
    manifest of a trainer that skipped segment j and is consistent about it."""
    work: sc.TrainedWork = run["work"]
    b = work.manifest.boundaries[j]
    d = tmp / f"tampered-{j}"
    sc.unpack(run["store"].get(b.checkpoint), d)
    gen = torch.Generator().manual_seed(j)
    save_file({k: torch.randn(v.shape, generator=gen) * 0.02 for k, v in load_file(str(d / ADAPTER_FILE)).items()},
              str(d / ADAPTER_FILE), metadata={"format": "pt"})
    blob = sc.pack(d)
    bounds = list(work.manifest.boundaries)
    bounds[j] = sc.Boundary(b.step, sc.params_hash(d), hashlib.sha256(blob).digest())
    adapter = work.adapter
    if j == len(bounds) - 1:
        adapter = (d / ADAPTER_FILE).read_bytes()
    manifest = sc.Manifest(hashlib.sha256(adapter).digest(), work.manifest.every, tuple(bounds))
    fake = sc.TrainedWork(adapter, manifest, [adapter, blob, manifest.encode()])
    run["store"].put_many(fake.blobs)
    return fake


def test_the_trainer_commits_to_every_boundary(run: dict[str, Any]) -> None:
    work: sc.TrainedWork = run["work"]
    assert run["steps"] == 8 and [b.step for b in work.manifest.boundaries] == [2, 4, 6, 8]
    assert sc.boundary_steps(8, 3) == [3, 6, 8] and sc.boundary_steps(8, 8) == [8] and sc.boundary_steps(0, 2) == []
    assert work.digest == hashlib.sha256((run["out"] / ADAPTER_FILE).read_bytes()).digest()
    assert work.manifest.boundaries[-1].params == sc.params_hash(run["out"])  # the adapter is the last boundary
    assert sc.Manifest.decode(work.manifest.encode()) == work.manifest
    assert work.root == sc.Manifest.decode(work.manifest.encode()).tree().root()


def test_resuming_a_boundary_reproduces_the_next_boundary_bit_for_bit(run: dict[str, Any], base: BaseModel,
                                                                      tmp_path: Path) -> None:
    work: sc.TrainedWork = run["work"]
    start, end = work.manifest.boundaries[1], work.manifest.boundaries[2]
    sc.unpack(run["store"].get(start.checkpoint), tmp_path / "checkpoints" / f"{checkpoints.PREFIX}{start.step:06d}")
    again = train(SPEC, RECORDS, base, tmp_path, until=end.step)
    assert again.steps == end.step and not (tmp_path / ADAPTER_FILE).exists()  # a segment leaves no final adapter
    assert sc.params_hash(again.out_dir) == end.params  # hash equality: bit for bit on the CPU
    assert len(again.losses) == end.step


def test_an_honest_trainer_passes_by_re_running_two_segments(run: dict[str, Any], base: BaseModel,
                                                             tmp_path: Path) -> None:
    work: sc.TrainedWork = run["work"]
    started = time.perf_counter()
    verdict = sc.check_segments(SPEC, RECORDS, base, fetch(run["store"]), check_of(work, 3), tmp_path)
    seconds = time.perf_counter() - started
    assert verdict.passed, verdict.why
    assert "2 of 4 segments re-run" in verdict.why and verdict.why.count("bit for bit") == 2
    assert any(verdict.digest)
    assert seconds < run["train_s"] * 3  # two segments of four, plus loading: never a second whole training


@pytest.mark.parametrize("j", [1, 3])
def test_a_tampered_segment_is_caught_when_drawn_and_missed_when_not(run: dict[str, Any], base: BaseModel,
                                                                     tmp_path: Path, j: int) -> None:
    fake = tampered(run, j, tmp_path)
    n = len(fake.manifest.boundaries)
    caught = cid_drawing(n, {j})
    verdict = sc.check_segments(SPEC, RECORDS, base, fetch(run["store"]), check_of(fake, caught), tmp_path / "c")
    assert not verdict.passed and not any(verdict.digest)
    assert "max |difference|" in verdict.why or "delivered adapter" in verdict.why, verdict.why
    if j < n - 1:  # the segment after a tampered boundary starts from it and fails as well
        after = cid_drawing(n, {j + 1}, avoid={j})
        assert not sc.check_segments(SPEC, RECORDS, base, fetch(run["store"]), check_of(fake, after),
                                     tmp_path / "d").passed
        # the limit: a draw of neither segment misses it (docs/market.md gives the odds)
        missed = cid_drawing(n, set(range(n)) - {j, j + 1}, avoid={j, j + 1})
        assert sc.check_segments(SPEC, RECORDS, base, fetch(run["store"]), check_of(fake, missed),
                                 tmp_path / "e").passed


def test_a_faked_root_or_a_manifest_that_is_not_under_it_fails(run: dict[str, Any], base: BaseModel,
                                                                tmp_path: Path) -> None:
    work: sc.TrainedWork = run["work"]
    got = fetch(run["store"])
    verdict = sc.check_segments(SPEC, RECORDS, base, got, check_of(work, 3, root=b"\x42" * 32), tmp_path / "a")
    assert not verdict.passed and "is not under the reported root" in verdict.why
    # the real boundaries, under the honest root, but one leaf's checkpoint swapped for another's
    bounds = list(work.manifest.boundaries)
    bounds[2] = replace(bounds[2], checkpoint=bounds[1].checkpoint)
    lying = sc.Manifest(work.manifest.adapter, work.manifest.every, tuple(bounds))
    run["store"].put(lying.encode())
    doc = {**check_of(work, cid_drawing(4, {2, 3})), "manifest": hashlib.sha256(lying.encode()).hexdigest()}
    verdict = sc.check_segments(SPEC, RECORDS, base, got, doc, tmp_path / "b")
    assert not verdict.passed and "is not under the reported root" in verdict.why
    # a root over fewer boundaries than the run has (a trainer that stopped early) fails before any re-run
    short = sc.Manifest(work.manifest.adapter, work.manifest.every, work.manifest.boundaries[:2])
    run["store"].put(short.encode())
    doc = {**check_of(work, 3, root=short.tree().root()), "boundaries": 2,
           "manifest": hashlib.sha256(short.encode()).hexdigest()}
    verdict = sc.check_segments(SPEC, RECORDS, base, got, doc, tmp_path / "c")
    assert not verdict.passed and "are not this run's" in verdict.why


def test_missing_or_malformed_blobs_fail_the_check(run: dict[str, Any], base: BaseModel, tmp_path: Path) -> None:
    work: sc.TrainedWork = run["work"]
    got = fetch(run["store"])
    verdict = sc.check_segments(SPEC, RECORDS, base, got, {**check_of(work, 3), "manifest": "ee" * 32}, tmp_path)
    assert not verdict.passed and verdict.why.startswith("blob_not_found")
    junk = b"not a manifest"
    run["store"].put(junk)
    verdict = sc.check_segments(SPEC, RECORDS, base, got,
                                {**check_of(work, 3), "manifest": hashlib.sha256(junk).hexdigest()}, tmp_path)
    assert not verdict.passed and verdict.why.startswith("market_bad_report")
    with pytest.raises(LedgerError, match="not a packed checkpoint"):
        sc.unpack(sc.PACK_MAGIC + b"\x00\x00\x00\x02[]", tmp_path / "x")
    shutil.rmtree(tmp_path / "x", ignore_errors=True)


@settings(max_examples=200, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), cid=st.integers(1, 2**63), n=st.integers(1, 500),
       k=st.integers(1, 6))
def test_the_segment_draw_is_in_range_distinct_and_a_function_of_the_seed(seed: bytes, cid: int, n: int,
                                                                          k: int) -> None:
    drawn = sc.segments(seed, cid, n, k)
    assert drawn == sc.segments(seed, cid, n, k)  # the same seed, the same segments
    assert len(drawn) == len(set(drawn)) == min(k, n) and all(0 <= s < n for s in drawn)
    assert drawn == sorted(drawn)


def test_other_seeds_draw_other_segments() -> None:
    draws = {tuple(sc.segments(bytes([i]) * 32, 1, 100)) for i in range(20)}
    assert len(draws) > 15


@pytest.mark.parametrize("optimizer", ["garbage", "wrong shapes"])
def test_a_start_checkpoint_that_cannot_be_resumed_fails_the_check_without_stopping_the_verifier(
        run: dict[str, Any], base: BaseModel, tmp_path: Path, optimizer: str) -> None:
    """The same weights as the honest boundary (its params hash holds), but optimizer state torch cannot use."""
    work: sc.TrainedWork = run["work"]
    j = 1
    b = work.manifest.boundaries[j]
    d = tmp_path / "bad"
    sc.unpack(run["store"].get(b.checkpoint), d)
    if optimizer == "garbage":
        (d / "optimizer.pt").write_bytes(b"not a torch file")
    else:
        state = torch.load(d / "optimizer.pt", weights_only=True)
        for moments in state["state"].values():
            moments["exp_avg"] = torch.zeros(3, 5)
        torch.save(state, d / "optimizer.pt")
    blob = sc.pack(d)
    bounds = list(work.manifest.boundaries)
    bounds[j] = sc.Boundary(b.step, sc.params_hash(d), hashlib.sha256(blob).digest())
    assert bounds[j].params == b.params
    manifest = sc.Manifest(work.manifest.adapter, work.manifest.every, tuple(bounds))
    fake = sc.TrainedWork(work.adapter, manifest, [blob, manifest.encode()])
    run["store"].put_many(fake.blobs)
    cid = cid_drawing(len(bounds), {j + 1}, avoid={j})  # the segment that starts from it
    verdict = sc.check_segments(SPEC, RECORDS, base, fetch(run["store"]), check_of(fake, cid), tmp_path / "c")
    assert not verdict.passed, verdict.why
    expected = "checkpoint_mismatch" if optimizer == "garbage" else "cannot be re-run from the trainer's checkpoint"
    assert expected in verdict.why, verdict.why
