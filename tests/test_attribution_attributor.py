"""The attribution bundle and records: facts trace to their owners, stuffers earn nothing, records verify.

The tiny model is trained on twelve made-up facts of four owners and four keyword-stuffer records
(tests/attribution_sim.py); every fact's own question and answer is attributed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ailedger.attribution.attributor import (
    BUNDLE_DIR,
    MANIFEST,
    Attributor,
    build_bundle,
    load_bundle,
    receipt_shares,
    record_bytes,
    record_hash,
    verify,
)
from ailedger.core.address import encode_address
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import sha256
from ailedger.factory.basemodel import BaseModel, load_base
from ailedger.factory.tiny import build_tiny
from ailedger.factory.train import TrainResult
from tests.attribution_sim import (
    CODES,
    CONFIG,
    CONTRIBUTORS,
    HASHES,
    NAMES,
    OWNERS,
    RECORDS,
    STUFFER,
    answer,
    build_facts_bundle,
    query,
    question,
    train_facts,
)

pytestmark = pytest.mark.timeout(300)  # the module's fixtures train and index an adapter (about 10 s when quiet)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> BaseModel:
    return load_base(build_tiny(tmp_path_factory.mktemp("base") / "tiny", seed=5))


@pytest.fixture(scope="module")
def trained(base: BaseModel, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    result = train_facts(base, tmp_path_factory.mktemp("run") / "adapter")
    build_facts_bundle(base, result.out_dir)
    return result


@pytest.fixture(scope="module")
def attributor(base: BaseModel, trained: TrainResult) -> Attributor:
    return Attributor.load(trained.out_dir, base)


@pytest.fixture(scope="module")
def records(attributor: Attributor, base: BaseModel) -> list[dict[str, Any]]:
    return [attributor.attribute(*query(base, question(n), answer(n, c))) for n, c in zip(NAMES, CODES, strict=True)]


def code_of(exc: pytest.ExceptionInfo[LedgerError]) -> str:
    return exc.value.code.name


# ---- what it finds and pays -------------------------------------------------------------------------------
def test_each_answer_pays_its_owner_and_never_the_stuffer(records: list[dict[str, Any]]) -> None:
    stuffer = encode_address(STUFFER)
    right = 0
    for i, rec in enumerate(records):
        shares = {s["contributor"]: s["bp"] for s in rec["shares"]}
        assert sum(shares.values()) == 10_000
        assert stuffer not in shares
        top = max(shares, key=lambda a: shares[a])
        right += top == encode_address(OWNERS[i % 4])
        paid = [r for r in rec["records"] if r["paid"]]
        assert paid and paid[0]["record"] == HASHES[i].hex()  # the fact's own record is the best one
        assert sum(r["bp"] for r in paid) == 10_000
        # the answer is the record's own words: one span covering it, found in that record alone
        assert any(HASHES[i].hex() in s["records"] and s["end"] - s["start"] >= 8 for s in rec["spans"])
    assert right == len(records)


def test_record_states_its_inputs(records: list[dict[str, Any]], attributor: Attributor, base: BaseModel) -> None:
    rec = records[0]
    b = attributor.bundle
    assert rec["method"] == "ailedger/attribution/v1" and rec["bundle_root"] == b.root.hex()
    assert rec["influence_root"] == b.influence.root.hex() and rec["spans_root"] == b.spans.root.hex()
    assert rec["projection_seed"] == CONFIG.seed and rec["k"] == CONFIG.k
    assert rec["rule"] == {"span_weight": 1.0, "floor": 0.5, "top_k": 16}
    prompt, ans = query(base, question(NAMES[0]), answer(NAMES[0], CODES[0]))
    assert rec["prompt_tokens"] == prompt and rec["answer_tokens"] == ans
    assert all(isinstance(r["score"], int) and isinstance(r["influence"], int) for r in rec["records"])
    assert record_hash(rec) == sha256(record_bytes(rec))
    assert json.loads(record_bytes(rec)) == rec
    shares = receipt_shares(rec)
    assert [a for a, _ in shares] == sorted(a for a, _ in shares) and sum(bp for _, bp in shares) == 10_000


def test_same_answer_same_bytes(attributor: Attributor, base: BaseModel, records: list[dict[str, Any]]) -> None:
    again = attributor.attribute(*query(base, question(NAMES[3]), answer(NAMES[3], CODES[3])))
    assert record_bytes(again) == record_bytes(records[3])


# ---- verification -----------------------------------------------------------------------------------------
def test_untouched_record_verifies(records: list[dict[str, Any]], attributor: Attributor) -> None:
    result = verify(records[1], attributor)
    assert result.ok and not result.differences
    assert record_bytes(result.recomputed) == record_bytes(records[1])


def test_tampered_record_is_reported(records: list[dict[str, Any]], attributor: Attributor) -> None:
    rec = json.loads(record_bytes(records[2]))
    rec["shares"] = [{"contributor": encode_address(STUFFER), "bp": 10_000}]  # someone paid themselves
    result = verify(rec, attributor)
    assert not result.ok and any("contributor" in d for d in result.differences)
    rec = json.loads(record_bytes(records[2]))
    rec["records"][0]["bp"], rec["records"][1]["bp"] = 0, rec["records"][0]["bp"] + rec["records"][1]["bp"]
    rec["records"][1]["paid"] = True  # the receipt would pay another record
    result = verify(rec, attributor)
    assert not result.ok and any("bp stored" in d for d in result.differences)
    rec = json.loads(record_bytes(records[2]))
    rec["records"][0]["score"] += 50_000  # an inflated score
    assert not verify(rec, attributor).ok
    rec = json.loads(record_bytes(records[2]))
    rec["answer_tokens"] = rec["answer_tokens"][:-3]  # another answer than the one scored
    assert not verify(rec, attributor).ok
    rec = json.loads(record_bytes(records[2]))
    rec["bundle_root"] = "00" * 32
    result = verify(rec, attributor)
    assert not result.ok and "bundle_root" in result.differences[0]


# ---- the bundle --------------------------------------------------------------------------------------------
def test_bundle_loads_checks_and_resumes(base: BaseModel, trained: TrainResult, attributor: Attributor,
                                         tmp_path: Path) -> None:
    root = attributor.root
    assert load_bundle(trained.out_dir, base, root).root.hex() == root
    with pytest.raises(LedgerError) as exc:
        load_bundle(trained.out_dir, base, "11" * 32)
    assert code_of(exc) == "attribution_root_mismatch"
    # rebuilding with the same settings keeps the influence index and gives the same root
    influence = trained.out_dir / BUNDLE_DIR / "influence.bin"
    before = influence.stat().st_mtime_ns
    again = build_bundle(trained.out_dir, base, RECORDS, HASHES, CONTRIBUTORS, CONFIG)
    assert again.root.hex() == root and influence.stat().st_mtime_ns == before
    assert again.contributors == CONTRIBUTORS


def test_bad_bundles_refused(base: BaseModel, trained: TrainResult, tmp_path: Path) -> None:
    copy = tmp_path / "adapter"
    shutil.copytree(trained.out_dir, copy)
    manifest = copy / BUNDLE_DIR / MANIFEST
    doc = json.loads(manifest.read_text())
    doc["contributors"][0] = encode_address(STUFFER)  # redirect a record's pay
    manifest.write_text(json.dumps(doc))
    with pytest.raises(LedgerError) as exc:
        load_bundle(copy, base)
    assert code_of(exc) == "attribution_index_corrupt"
    shutil.rmtree(copy / BUNDLE_DIR)
    with pytest.raises(LedgerError) as exc:
        load_bundle(copy, base)
    assert code_of(exc) == "attribution_missing"
    with pytest.raises(LedgerError) as exc:  # a record without a contributor
        build_bundle(copy, base, RECORDS, HASHES, {h: c for h, c in CONTRIBUTORS.items() if h != HASHES[5]}, CONFIG)
    assert code_of(exc) == "attribution_index_mismatch"
    with pytest.raises(LedgerError) as exc:  # records of another snapshot
        build_bundle(copy, base, RECORDS[:-1], HASHES[:-1], CONTRIBUTORS, CONFIG)
    assert code_of(exc) == "attribution_index_mismatch"
    spans = trained.out_dir / BUNDLE_DIR / "spans.bin"
    shutil.copytree(trained.out_dir / BUNDLE_DIR, copy / BUNDLE_DIR)
    data = bytearray(spans.read_bytes())
    data[-5] ^= 1
    (copy / BUNDLE_DIR / "spans.bin").write_bytes(bytes(data))
    with pytest.raises(LedgerError) as exc:
        load_bundle(copy, base)
    assert code_of(exc) == "attribution_index_corrupt"


def test_empty_answer_refused(attributor: Attributor, base: BaseModel) -> None:
    prompt, _ = query(base, question(NAMES[0]), "")
    with pytest.raises(LedgerError) as exc:
        attributor.attribute(prompt, [])
    assert code_of(exc) == "empty_answer"
