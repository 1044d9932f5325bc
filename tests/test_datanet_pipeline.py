"""The off-ledger Datanet workers against a real (embedded) node: check, contribute, gatekeeper, export.

The backend is the CLI's `Embedded` data directory, so every write seals a block at once and the
tests see exactly what the ledger holds after each step.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ailedger.api.client import HttpClient
from ailedger.chain.genesis import Allocation, Genesis
from ailedger.cli.backend import Embedded
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.core.merkle import merkle_root
from ailedger.datanet import payloads as p
from ailedger.datanet.export import export_version, verify_export
from ailedger.datanet.gatekeeper import run_gates
from ailedger.datanet.gates.records import canonical_record, record_hash
from ailedger.datanet.gates.runner import GateConfig
from ailedger.datanet.gates.verdict import DuplicateReason, Gate
from ailedger.datanet.pipeline import check_file, contribute
from ailedger.datanet.remote import TxSender, WithReport
from ailedger.datanet.state import FeeSplit
from ailedger.datanet.synth import SCHEMA, SynthMix, generate
from ailedger.modules import default_runtime
from tests.conftest import CHAIN_ID, key
from tests.conftest_api import make_chain, serve_in_thread

UNIT = 1_000_000
OWNER, C1, C2, POOR, V1, V2 = (key(100 + i) for i in range(6))
PROPOSER = key(999)
PARAMS = {"datanet_min_window_blocks": 1, "datanet_max_records_per_tx": 16}
MIX = SynthMix(near_dup=0.1, exact_dup=0.05, pii=0.08, pii_lookalike=0.05, off_topic=0.06, junk=0.06)
TEXT = "Toast the cumin seeds in a dry pan until fragrant, then grind them; the dish tastes twice as deep."


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    allocs = [Allocation(OWNER.address, 100 * UNIT), Allocation(C1.address, 100 * UNIT),
              Allocation(C2.address, 100 * UNIT), Allocation(POOR.address, 50_000),
              Allocation(V1.address, UNIT, 5 * UNIT), Allocation(V2.address, UNIT, 3 * UNIT)]
    genesis = Genesis(CHAIN_ID, 1_700_000_000_000, PROPOSER.public_key, allocs, PARAMS)
    return make_chain(tmp_path / "data", genesis, default_runtime(), PROPOSER)


@pytest.fixture
def backend(data_dir: Path) -> Iterator[Embedded]:
    b = Embedded(data_dir, write=True)
    yield b
    b.close()


def send(backend: Embedded, k: KeyPair, tx_type: int, payload: Any, codec: Any) -> None:
    sender = TxSender(backend, k)
    sender.send(tx_type, codec.encode(payload))
    sender.finish()


def create(backend: Embedded, name: str = "cook", schema: dict[str, Any] | None = None, pii: int = 0,
           window: int = 50) -> None:
    schema_hash = bytes(32)
    if schema is not None:
        schema_hash = bytes.fromhex(backend.put_blobs([canonical_record(schema)])[0])
    send(backend, OWNER, p.CREATE, p.CreateDatanet(name, "home cooking", "", schema_hash, "CC-BY-4.0", 10_000, 1,
                                                   window, FeeSplit(7_000, 1_500, 1_000, 500), 8_000, pii),
         p.CREATE_CODEC)


def honest(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """`n` distinct on-topic records that pass every gate."""
    return [s.record for s in generate(n, seed, SynthMix(0, 0, 0, 0, 0, 0))]


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def ledger(backend: Embedded) -> tuple[int, str, int]:
    st = backend.status()
    return st["height"], st["state_root"], len(backend.node.blobs)


def test_check_file_names_lines_and_known_records(tmp_path: Path) -> None:
    good = {"title": "Cumin", "text": TEXT}
    path = tmp_path / "r.jsonl"
    odd = {"title": 3, "text": "Rest the dough for an hour in a cool room before rolling it."}
    leak = {"title": "t", "text": "Mail me at ann@example.org " + TEXT}
    path.write_text(f"{json.dumps(good)}\n\n{json.dumps(odd)}\n{json.dumps(good)}\n{json.dumps(leak)}\n")
    results = list(check_file(path, GateConfig(schema=SCHEMA)))
    assert [r.line for r in results] == [1, 3, 4, 5]
    assert [r.result.passed for r in results] == [True, False, False, False]
    assert [v.gate_name for v in results[1].result.failures] == ["schema"]
    assert results[2].duplicate and results[2].result.failures[0].reason == DuplicateReason.WITHIN_BATCH
    assert [v.gate_name for v in results[3].result.failures] == ["pii"]
    known = list(check_file(path, GateConfig(schema=SCHEMA), {record_hash(good)}))
    first = known[0].result.failures
    assert [(v.gate, v.reason) for v in first] == [(Gate.EXACT_DUPLICATE, DuplicateReason.IN_DATANET)]
    assert known[0].to_json()["verdicts"][0]["gate_name"] == "exact_duplicate"


def test_contribute_skips_failures_and_is_idempotent(backend: Embedded, tmp_path: Path) -> None:
    create(backend, schema=SCHEMA)
    synth = list(generate(80, seed=3, mix=MIX))
    path = write_jsonl(tmp_path / "c.jsonl", [s.record for s in synth])
    labels: dict[bytes, str] = {}
    for s in synth:
        labels.setdefault(record_hash(s.record), s.label)  # an exact copy has its original's hash
    summary = contribute(path, "cook", C1, backend)
    assert summary.read == 80 and summary.staked == summary.to_stake == summary.passed > 0
    assert summary.rejected > 0 and summary.duplicates_in_file > 0 and summary.by_reason
    staked = backend.datanet_hashes("cook", "any")["hashes"]
    assert len(staked) == summary.staked
    assert {labels[bytes.fromhex(h)] for h in staked} <= {"honest", "pii_lookalike", "off_topic"}
    dn = backend.datanet("cook")
    assert dn["counts"]["pending"] == summary.staked and dn["contributors_total"] == 1
    before = ledger(backend)
    again = contribute(path, "cook", C1, backend)
    assert again.staked == 0 and again.already_in_datanet == summary.staked and not again.tx_ids
    assert ledger(backend) == before


class Interrupting:
    """A backend that raises KeyboardInterrupt on the n-th blob upload (Ctrl-C in the middle of a run)."""

    def __init__(self, inner: Embedded, at: int) -> None:
        self.inner, self.at, self.calls = inner, at, 0

    def put_blobs(self, blobs: list[bytes]) -> list[str]:
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.inner.put_blobs(blobs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_interrupted_contribute_resumes_without_double_stake(backend: Embedded, tmp_path: Path) -> None:
    create(backend)
    records = honest(60)
    path = write_jsonl(tmp_path / "c.jsonl", records)
    with pytest.raises(WithReport) as caught:
        contribute(path, "cook", C1, Interrupting(backend, 3))  # type: ignore[arg-type]
    assert caught.value.code is errors.INTERRUPTED and len(caught.value.report["tx_ids"]) == 2
    resumed = contribute(path, "cook", C1, backend)
    assert resumed.already_in_datanet == 32 and resumed.staked == 28  # 2 chunks of 16 went out before Ctrl-C
    dn = backend.datanet("cook")
    assert dn["counts"]["pending"] == 60
    acct = backend.account(C1.address_text)
    assert acct["balance"] == 100 * UNIT - 60 * 10_000 - acct["nonce"] * 1_000
    assert sorted(backend.datanet_hashes("cook", "any")["hashes"]) == sorted(record_hash(r).hex() for r in records)


def test_insufficient_balance_writes_nothing(backend: Embedded, tmp_path: Path) -> None:
    create(backend)
    path = write_jsonl(tmp_path / "c.jsonl", honest(10))
    before = ledger(backend)
    with pytest.raises(LedgerError) as caught:
        contribute(path, "cook", POOR, backend)
    assert caught.value.code is errors.INSUFFICIENT_BALANCE and "needs" in caught.value.detail
    assert ledger(backend) == before


def test_gatekeeper_rejects_checks_once_and_remembers(backend: Embedded, tmp_path: Path) -> None:
    create(backend, schema=SCHEMA)
    synth = list(generate(80, seed=5, mix=MIX))
    first = [s for s in synth if s.label != "near_dup"]
    summary = contribute(write_jsonl(tmp_path / "a.jsonl", [s.record for s in first]), "cook", C1, backend,
                         include_rejected=True)
    assert summary.staked == summary.passed + summary.rejected
    state = tmp_path / "gk"
    gated = run_gates("cook", OWNER, backend, state)
    assert gated.rejected == summary.rejected > 0 and gated.passed == summary.passed
    assert set(gated.by_reason) <= set(summary.by_reason)  # the ledger gets each record's first failure
    dn = backend.datanet("cook")
    assert dn["counts"]["gate_rejected"] == gated.rejected and dn["pool"] == gated.rejected * 10_000
    rejected = {r["record_hash"] for r in gated.rejections}
    sample = backend.datanet_record("cook", next(iter(rejected)))
    assert sample["status"] == "gate_rejected" and sample["gate"]["message"]
    again = run_gates("cook", OWNER, backend, state)
    assert (again.already_checked, again.checked, again.tx_ids) == (gated.passed, 0, [])
    copies = [s.record for s in synth if s.label == "near_dup"]
    contribute(write_jsonl(tmp_path / "b.jsonl", copies), "cook", C2, backend)
    later = run_gates("cook", OWNER, backend, state)
    assert later.checked == len(copies) and later.by_reason.get("near_duplicate/in_datanet", 0) >= len(copies) - 1
    with pytest.raises(LedgerError) as caught:
        run_gates("cook", C1, backend, state)
    assert caught.value.code is errors.NOT_GATEKEEPER


def test_redact_policy_stores_redacted_bytes_and_gatekeeper_catches_raw_pii(backend: Embedded,
                                                                           tmp_path: Path) -> None:
    create(backend, pii=1)
    leak = {"text": "Write to chef.ann@example.org for the recipe. " + TEXT}
    summary = contribute(write_jsonl(tmp_path / "l.jsonl", [leak]), "cook", C1, backend)
    assert summary.staked == 1 and summary.rejected == 0
    (stored,) = backend.datanet_hashes("cook", "any")["hashes"]
    assert stored != record_hash(leak).hex() and b"example.org" not in backend.get_blob(stored)
    raw = canonical_record({"text": "Call me on chef.bob@example.org. " + TEXT})  # a client that skipped redaction
    (h,) = backend.put_blobs([raw])
    send(backend, C2, p.CONTRIBUTE, p.Contribute("cook", [bytes.fromhex(h)], merkle_root([bytes.fromhex(h)])),
         p.CONTRIBUTE_CODEC)
    gated = run_gates("cook", OWNER, backend, tmp_path / "gk")
    assert gated.passed == 1 and gated.rejected == 1
    assert gated.rejections[0]["record_hash"] == h and gated.rejections[0]["gate_name"] == "pii"


class Tampering:
    """A backend whose version listing swaps one record hash for another record's (a lying node)."""

    def __init__(self, inner: Embedded) -> None:
        self.inner = inner

    def datanet_version(self, name: str, number: int, offset: int = 0, limit: int = 10_000) -> dict[str, Any]:
        doc = self.inner.datanet_version(name, number, offset, limit)
        doc["hashes"][0] = doc["hashes"][-1]
        return doc

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_export_verifies_the_root(backend: Embedded, tmp_path: Path) -> None:
    create(backend, window=1)
    send(backend, V1, p.REGISTER_VALIDATOR, p.Named("cook"), p.NAMED_CODEC)
    records = honest(5)
    contribute(write_jsonl(tmp_path / "c.jsonl", records), "cook", C1, backend)
    pending = [bytes.fromhex(r["hash"]) for r in backend.datanet_pending("cook")["records"]]
    send(backend, V1, p.VOTE, p.VoteBatch("cook", [p.Ballot(h, 1) for h in pending]), p.VOTE_CODEC)
    send(backend, OWNER, p.SNAPSHOT, p.Named("cook"), p.NAMED_CODEC)
    version = backend.datanet("cook")["versions"][0]
    assert version["count"] == 5
    out = tmp_path / "v1.jsonl"
    done = export_version("cook", 1, backend, out)
    assert done["verified"] and verify_export(out, version["root"])
    lines = out.read_text().splitlines()
    assert sorted(lines) == sorted(canonical_record(r).decode() for r in records)
    bad = tmp_path / "bad.jsonl"
    with pytest.raises(LedgerError) as caught:
        export_version("cook", 1, Tampering(backend), bad)  # type: ignore[arg-type]
    assert caught.value.code is errors.EXPORT_MISMATCH and not bad.exists()
    with pytest.raises(LedgerError) as caught:
        export_version("cook", 2, backend, bad)
    assert caught.value.code is errors.VERSION_NOT_FOUND


def test_http_and_embedded_answer_alike(backend: Embedded, tmp_path: Path) -> None:
    create(backend, window=3)
    send(backend, V1, p.REGISTER_VALIDATOR, p.Named("cook"), p.NAMED_CODEC)
    records = honest(20)
    contribute(write_jsonl(tmp_path / "a.jsonl", records[:12]), "cook", C1, backend)  # window ends 3 blocks on
    first = backend.datanet_pending("cook", 5)["records"][0]["hash"]
    send(backend, V1, p.VOTE, p.VoteBatch("cook", [p.Ballot(bytes.fromhex(first), 1)]), p.VOTE_CODEC)
    for _ in range(3):  # the third snapshot comes after the window: version 3 holds the accepted record
        send(backend, OWNER, p.SNAPSHOT, p.Named("cook"), p.NAMED_CODEC)
    contribute(write_jsonl(tmp_path / "b.jsonl", records[12:]), "cook", C2, backend)
    with serve_in_thread(backend.node) as url, HttpClient(url) as http:
        calls: list[tuple[str, tuple[Any, ...]]] = [
            ("datanets", ()), ("datanet", ("cook",)), ("datanet_record", ("cook", first)),
            ("datanet_record", ("cook", first.upper())), ("datanet_pending", ("cook", 5, 2)),
            ("datanet_version", ("cook", 3, 0, 1)), ("datanet_hashes", ("cook", "any", 5, 5)),
            ("datanet_hashes", ("cook", "pending", 0, 3)), ("datanet_hashes", ("cook", "accepted")),
            ("datanet_known", ("cook", [first, "00" * 32])), ("reputation", (C1.address_text,)),
        ]
        for name, args in calls:
            assert getattr(http, name)(*args) == getattr(backend, name)(*args), name
        every: list[str] = []
        offset: int | None = 0
        while offset is not None:
            page = http.datanet_hashes("cook", "any", offset, 5)
            every += page["hashes"]
            offset = page["next_offset"]
        assert every == sorted(record_hash(r).hex() for r in records)
        assert http.datanet_version("cook", 3)["hashes"] == [first]
        assert len(http.datanet_pending("cook", 100)["records"]) == 8
        assert http.datanet_known("cook", [first, every[0]])["known"][first] == "accepted"
        bad: list[tuple[str, tuple[Any, ...], str]] = [
            ("datanet", ("nope",), "datanet_not_found"), ("datanet_record", ("cook", "xyz"), "bad_record_hash"),
            ("datanet_record", ("cook", "00" * 32), "record_not_found"),
            ("datanet_version", ("cook", 4), "version_not_found"),
            ("datanet_version", ("cook", 0), "version_not_found"),
            ("datanet_hashes", ("cook", "rejected"), "bad_request"), ("reputation", ("al1xyz",), "bad_address"),
            ("datanet_known", ("cook", ["zz"]), "bad_record_hash"),
        ]
        for name, args, code in bad:
            for side in (http, backend):
                with pytest.raises(LedgerError) as caught:
                    getattr(side, name)(*args)
                assert caught.value.code.name == code, (name, side)
        with pytest.raises(LedgerError) as caught:
            http.datanet_pending("cook", 5_000)
        assert caught.value.code is errors.BAD_REQUEST
