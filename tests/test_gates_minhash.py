"""MinHash signatures, the LSH index (query, save/load) and the near-duplicate gate on planted copies."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from datasketch.lsh import _optimal_param
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet.gates.baseline import compare_with_datasketch
from ailedger.datanet.gates.lsh import NearDupIndex, estimate, low_bits
from ailedger.datanet.gates.minhash import (
    EMPTY,
    MinHasher,
    jaccard_estimate,
    normalise,
    normalise_many,
    optimal_bands,
    shingle_hashes,
)
from ailedger.datanet.gates.neardup import NearDupGate
from ailedger.datanet.gates.records import record_text
from ailedger.datanet.gates.verdict import DuplicateReason
from ailedger.datanet.synth import SynthRecord, generate

TEXT = "Pat the salmon dry before it goes into the pan, or it will steam instead of brown. Rest it after."


def h(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest()


@pytest.fixture(scope="module")
def sample() -> list[SynthRecord]:
    """About 5,000 synthetic records without junk (junk copies of junk are near-duplicates too)."""
    return [r for r in generate(5200, seed=11) if r.label != "junk"]


def test_normalise_drops_case_punctuation_and_spacing() -> None:
    assert normalise("  Hello,   WORLD!\n\tIt's  fine.  ") == "hello world its fine"
    texts = ["Hello, World!", "Çà   va? Très bien.", "", "a\x1eb", "x_y-z"]
    assert normalise_many(texts) == [normalise(t) for t in texts]


def test_identical_texts_have_identical_signatures() -> None:
    mh = MinHasher(128, seed=3)
    sigs = mh.signatures([TEXT, TEXT.upper(), TEXT + "!!", "something else entirely, about cars"])
    assert sigs.shape == (4, 128) and sigs.dtype == np.uint32
    assert (sigs[0] == sigs[1]).all() and (sigs[0] == sigs[2]).all()
    assert jaccard_estimate(sigs[0], sigs[3]) < 0.2


def test_signatures_match_a_direct_computation() -> None:
    mh = MinHasher(64, seed=5)
    texts = [TEXT, "short", "ab", "", "x" * 40000]  # a text longer than one kernel block
    sigs = mh.signatures(texts)
    x, counts = shingle_hashes(normalise_many(texts))
    offsets = np.cumsum(counts) - counts
    for i in range(len(texts)):
        own = x[offsets[i]:offsets[i] + counts[i]]
        if len(own) == 0:
            assert (sigs[i] == EMPTY).all()
            continue
        direct = ((mh._a * own[None, :] + mh._b).min(axis=1) >> np.uint64(32)).astype(np.uint32)
        assert (direct == sigs[i]).all()


def test_chunking_does_not_change_signatures() -> None:
    texts = [r.record["text"] for r in generate(300, seed=2)]
    mh = MinHasher()
    whole = mh.signatures(texts)
    parts = np.concatenate([mh.signatures(texts[i:i + 7]) for i in range(0, len(texts), 7)])
    assert (whole == parts).all()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(100, 600), st.floats(0.0, 1.0), st.integers(0, 2**31))
def test_estimate_tracks_true_jaccard(size: int, overlap: float, seed: int) -> None:
    """Random shingle sets with a chosen overlap: the estimate stays within 0.2 (about 4.5 sigma at k=128)."""
    rng = np.random.default_rng(seed)
    universe = rng.choice(2**32, size=3 * size, replace=False).astype(np.uint64)
    shared = int(size * overlap)
    a = universe[:size]
    b = np.concatenate((universe[:shared], universe[size:2 * size - shared]))
    true = shared / (2 * size - shared)
    sigs = MinHasher(128, seed=seed % 1000).signatures_from_shingles(np.concatenate((a, b)),
                                                                      np.array([len(a), len(b)], dtype=np.int64))
    assert abs(jaccard_estimate(sigs[0], sigs[1]) - true) < 0.2
    assert abs(float(estimate(low_bits(sigs[:1]), low_bits(sigs[1:]))[0]) - true) < 0.2


@pytest.mark.parametrize(("threshold", "num_perm", "fp", "fn"),
                         [(0.8, 128, 0.5, 0.5), (0.8, 128, 0.1, 0.9), (0.5, 64, 0.5, 0.5), (0.9, 256, 0.3, 0.7)])
def test_bands_match_datasketch(threshold: float, num_perm: int, fp: float, fn: float) -> None:
    assert optimal_bands(threshold, num_perm, fp, fn) == _optimal_param(threshold, num_perm, fp, fn)


def test_index_query_add_and_empty_texts() -> None:
    idx = NearDupIndex()
    sigs = idx.signatures([TEXT, "", "A completely different note about braising beef shin slowly in stock."])
    idx.add_many([h(0), h(1), h(2)], sigs)
    assert len(idx) == 3
    probe = idx.signatures([TEXT.replace("salmon", "salmon fillet"), "", "unrelated words about tyres"])
    assert idx.query(probe[0]) == [h(0)]
    assert idx.query(probe[1]) == []  # empty texts never match
    assert idx.query(probe[2]) == []
    single = NearDupIndex()
    single.add(h(9), sigs[0])
    assert single.query(probe[0]) == [h(9)]
    with pytest.raises(ValueError):
        idx.add_many([h(3)], sigs)


def test_index_save_load_round_trip(tmp_path: Path, sample: list[SynthRecord]) -> None:
    texts = [record_text(r.record) for r in sample[:1500]]
    one, two = NearDupIndex(), NearDupIndex()
    sigs = one.signatures(texts)
    one.add_many([h(i) for i in range(len(texts))], sigs)
    for s in range(0, len(texts), 100):  # other insert order of runs, same content
        two.add_many([h(i) for i in range(s, min(s + 100, len(texts)))], sigs[s:s + 100])
    one.save(tmp_path / "a.npz")
    two.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = NearDupIndex.load(tmp_path / "a.npz")
    back.save(tmp_path / "c.npz")
    assert (tmp_path / "c.npz").read_bytes() == (tmp_path / "a.npz").read_bytes()
    assert back.settings() == one.settings() and len(back) == len(one)
    rows, ids, est = one.matches(sigs[:300])
    rows2, ids2, est2 = back.matches(sigs[:300])
    assert (rows == rows2).all() and (ids == ids2).all() and (est == est2).all()


def test_index_load_rejects_damage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(LedgerError) as err:
        NearDupIndex.load(bad)
    assert err.value.code is errors.BAD_NEARDUP_INDEX
    with pytest.raises(LedgerError):
        NearDupIndex.load(tmp_path / "missing.npz")


def test_gate_first_passes_and_names_where_the_copy_is() -> None:
    datanet = NearDupIndex()
    datanet.add(h(100), datanet.signatures([TEXT])[0])
    gate = NearDupGate(datanet)
    other = "Toast the cumin seeds in a dry pan until fragrant, then grind them for a smoky finish tonight."
    texts = [other, TEXT + " Truly.", other.replace("tonight", "today"), other, "", ""]
    hashes = [h(i) for i in range(len(texts))]
    found = gate.check(texts, hashes, [True] * len(texts))
    assert found[0] is None
    assert found[1] is not None and found[1].reason == DuplicateReason.IN_DATANET and found[1].matched == h(100)
    assert found[2] is not None and found[2].reason == DuplicateReason.WITHIN_BATCH and found[2].matched == h(0)
    assert found[3] is not None and found[3].matched == h(0)
    assert found[4] is None and found[5] is None
    assert len(datanet) == 1  # the Datanet's index is not touched
    later = gate.check([other + " Again."], [h(50)], [True])  # the next chunk sees the batch so far
    assert later[0] is not None and later[0].reason == DuplicateReason.WITHIN_BATCH


def test_gate_does_not_index_ineligible_records() -> None:
    gate = NearDupGate()
    found = gate.check([TEXT, TEXT + " Yes."], [h(0), h(1)], [False, True])
    assert found == [None, None]


def _flags(sample: list[SynthRecord], chunk: int) -> list[bool]:
    gate = NearDupGate()
    texts = [record_text(r.record) for r in sample]
    flags: list[bool] = []
    for s in range(0, len(texts), chunk):
        part = texts[s:s + chunk]
        flags += [m is not None for m in gate.check(part, [h(s + i) for i in range(len(part))], [True] * len(part))]
    return flags


def test_planted_near_duplicates_found(sample: list[SynthRecord]) -> None:
    flags = _flags(sample, 1000)
    near = [f for f, r in zip(flags, sample, strict=True) if r.label == "near_dup"]
    correct = sum(f and r.label in ("near_dup", "exact_dup") for f, r in zip(flags, sample, strict=True))
    recall, precision = sum(near) / len(near), correct / sum(flags)
    assert len(near) > 400
    assert recall >= 0.95 and precision >= 0.95, (recall, precision)
    assert flags == _flags(sample, 333)  # the outcome does not depend on the chunk size


def test_compare_with_datasketch(sample: list[SynthRecord]) -> None:
    part = sample[:2500]
    res = compare_with_datasketch([r.record for r in part], truth=[r.label in ("near_dup", "exact_dup")
                                                                  for r in part])
    assert res["records"] == 2500 and (res["bands"], res["rows"]) == (14, 9)
    assert res["ours_recall"] >= 0.95 and res["ours_precision"] >= 0.95
    assert res["agreement"] >= 0.95
    assert res["speedup_vs_datasketch"] > 1.0  # measured ~8-10x in the benchmark; loose under a loaded CI
