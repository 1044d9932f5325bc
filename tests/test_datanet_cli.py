"""`ailedger datanet` and `ailedger reputation` end to end: the embedded data directory and a real node.

A synthetic Datanet (seeded generator) goes through every step: create with a JSON schema,
contributions from several contributors (junk, PII and duplicates never staked), the gatekeeper,
two validators' votes, windows closing, reputation moving, a snapshot and an export checked
against the ledger's root. Every refusal leaves the ledger as it was.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ailedger.chain import writerlock
from ailedger.chain.blobstore import BlobStore
from ailedger.cli.demo import running_node
from ailedger.core.merkle import merkle_root
from ailedger.datanet.gates.pii import find_pii
from ailedger.datanet.gates.records import record_hash
from ailedger.datanet.synth import SCHEMA, SynthMix, SynthRecord, generate
from tests.test_cli import as_json, fails, home, run

__all__ = ["home"]  # the fixture, shared with test_cli

MIX = SynthMix(near_dup=0.1, exact_dup=0.05, pii=0.08, pii_lookalike=0.05, off_topic=0.06, junk=0.06)
HONEST = ("cook-1", "cook-2")
KEYS = ("owner", "c1", "c2", "poor", "v1", "v2", "stranger")


def init_chain(window_min: int = 1) -> None:
    for k in KEYS:
        run("keys", "new", k)
    run("chain", "init", "--chain-id", "dn-cli", "--alloc", "owner=100", "--alloc", "c1=100", "--alloc", "c2=100",
        "--alloc", "poor=0.05", "--alloc", "v1=20", "--alloc", "v2=20", "--alloc", "stranger=5",
        "--param", f"datanet_min_window_blocks={window_min}", "--param", "datanet_max_records_per_tx=25")


def write(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def ledger_now(*extra: str) -> tuple[Any, ...]:
    st = as_json("status", *extra)
    return st["height"], st["state_root"], st["pending"]


def labels_of(synth: list[SynthRecord]) -> dict[str, str]:
    out: dict[str, str] = {}
    for s in synth:
        out.setdefault(record_hash(s.record).hex(), s.label)  # an exact copy has its original's hash
    return out


def advance_to(height: int, *extra: str) -> None:
    """Seal blocks with cheap transfers until the head is at `height`."""
    while as_json("status", *extra)["height"] < height:
        run("tx", "transfer", "--from", "stranger", "--to", "owner", "--amount", "0.000001", *extra)


@pytest.fixture
def synth() -> list[SynthRecord]:
    return list(generate(120, seed=7, mix=MIX, honest_contributors=3))


def test_datanet_lifecycle_embedded(home: Path, tmp_path: Path, synth: list[SynthRecord]) -> None:
    init_chain()
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    for v in ("v1", "v2"):
        run("tx", "stake", "--from", v, "--amount", "10" if v == "v1" else "5")
    created = as_json("datanet", "create", "cook", "--from", "owner", "--topic", "home cooking tips",
                      "--schema", str(schema), "--stake-per-record", "0.01", "--quorum", "2", "--window", "10")
    assert created["schema_hash"] == hashlib.sha256(json.dumps(SCHEMA, sort_keys=True, separators=(",", ":"))
                                                    .encode()).hexdigest()
    assert created["tx"]["receipt"]["ok"] and created["owner"] in created["gatekeepers"]
    run("datanet", "register-validator", "cook", "--from", "v1")
    run("datanet", "register-validator", "cook", "--from", "v2")

    labels = labels_of(synth)
    mine = write(tmp_path / "c1.jsonl", [s.record for s in synth if s.contributor in HONEST])
    theirs = write(tmp_path / "c2.jsonl", [s.record for s in synth if s.contributor not in HONEST])
    checked = as_json("datanet", "check", str(theirs), "--datanet", "cook")
    assert checked["summary"]["rejected"] > 0 and checked["datanet"] == "cook"
    assert all(r["line"] >= 1 and r["verdicts"] is not None for r in checked["records"])
    for record in checked["records"]:
        for v in record["verdicts"]:
            assert v["gate_name"] and v["reason_name"] and v["message"]
    text = run("datanet", "check", str(theirs), "--datanet", "cook").stdout
    assert "pii/" in text and "line " in text and "records read" in text

    s1 = as_json("datanet", "contribute", "cook", str(mine), "--from", "c1")
    s2 = as_json("datanet", "contribute", "cook", str(theirs), "--from", "c2")
    assert s1["staked"] == s1["to_stake"] > 0 and s2["staked"] > 0
    assert s2["by_reason"] and s2["skipped_duplicates"] > 0
    staked = as_json("datanet", "show", "cook")
    assert staked["counts"]["pending"] == s1["staked"] + s2["staked"]
    pending = as_json("datanet", "review", "cook", "--limit", "1000")["records"]
    assert {labels[r["hash"]] for r in pending} <= {"honest", "pii_lookalike", "off_topic", "near_dup"}
    assert all(r["text"] and r["window_end"] > r["submitted"] for r in pending)

    gated = as_json("datanet", "gate", "cook", "--from", "owner", "--no-offtopic")
    rejected = {r["record_hash"] for r in gated["rejections"]}
    assert gated["rejected"] > 0 and {labels[h] for h in rejected} == {"near_dup"}

    open_records = [r["hash"] for r in as_json("datanet", "review", "cook", "--limit", "1000")["records"]]
    drift = [h for h in open_records if labels[h] == "off_topic"]
    good = [h for h in open_records if labels[h] != "off_topic"]
    assert drift and good
    voted = as_json("datanet", "vote", "cook", "accept", *good, "--from", "v1", "--reason", "on topic, clean")
    assert voted["reason"] == "on topic, clean" and len(voted["tx_ids"]) == -(-len(good) // 25)
    assert json.loads(Path(voted["log"]).read_text().splitlines()[0])["reason"] == "on topic, clean"
    run("datanet", "vote", "cook", "reject", *drift, "--from", "v1")
    run("datanet", "vote", "cook", "accept", *good[:-1], "--from", "v2")
    run("datanet", "vote", "cook", "reject", good[-1], *drift, "--from", "v2")  # v2 is outvoted on good[-1]
    shown = as_json("datanet", "review", "cook", "--limit", "1")["records"][0]
    assert len(shown["votes"]) == 2

    fails("datanet", "vote", "cook", "accept", good[0], "--from", "stranger", code="not_validator")
    advance_to(max(r["window_end"] for r in pending) + 1)
    fails("datanet", "vote", "cook", "accept", good[0], "--from", "v1", code="vote_window_closed")

    final = as_json("datanet", "show", "cook")
    counts = final["counts"]
    assert counts["pending"] == 0 and counts["accepted"] == len(good) and counts["rejected"] == len(drift)
    assert counts["gate_rejected"] == len(rejected)
    c1 = as_json("reputation", "show", "c1")["roles"]["contributor"]
    c2 = as_json("reputation", "show", "c2")["roles"]["contributor"]
    v1 = as_json("reputation", "show", "v1")["roles"]["validator"]
    v2 = as_json("reputation", "show", "v2")["roles"]["validator"]
    assert c1["score_bps"] > c2["score_bps"] > 5_000 and c1["beta"] == 1_000_000 < c2["beta"]  # c2 lost some
    assert v1["score_bps"] > v2["score_bps"] > 5_000 and v2["beta"] > 1_900_000  # v2: one vote against
    assert "validator" in run("reputation", "show", "v2").stdout
    c1_acct = as_json("account", "show", "c1")
    assert c1_acct["balance"] == 100_000_000 - c1_acct["nonce"] * 1_000  # every stake came back
    assert as_json("account", "show", "v2")["stake"] == 5_000_000 - 1_000  # slashed 10% of 0.01 once

    snap = as_json("datanet", "snapshot", "cook", "--from", "owner")
    assert snap["version"] == 1 and snap["count"] == len(good)
    out = tmp_path / "v1.jsonl"
    exported = as_json("datanet", "export", "cook", "--version", "1", "--out", str(out))
    lines = out.read_bytes().splitlines()
    assert exported["verified"] and len(lines) == len(good)
    assert merkle_root([hashlib.sha256(line).digest() for line in lines]).hex() == snap["root"]
    assert {hashlib.sha256(line).hexdigest() for line in lines} == set(good)
    listed = as_json("datanet", "list")["datanets"]
    assert [d["name"] for d in listed] == ["cook"] and listed[0]["counts"]["versions"] == 1
    assert "cook" in run("datanet", "list").stdout and "version" in run("datanet", "show", "cook").stdout

    # a second round, gated with the off-topic gate (the real static embedder) now that records are accepted
    fresh = list(generate(300, seed=8, mix=SynthMix(0, 0, 0, 0, off_topic=0.2, junk=0)))
    drifted = [s.record for s in fresh if s.label == "off_topic"][:5]
    second = write(tmp_path / "round2.jsonl", [s.record for s in fresh if s.label == "honest"][:10] + drifted)
    assert as_json("datanet", "contribute", "cook", str(second), "--from", "c1")["staked"] == 15
    gated = as_json("datanet", "gate", "cook", "--from", "owner", "--offtopic-threshold", "0.3")
    assert gated["offtopic"] and gated["checked"] == 15
    off = {r["record_hash"] for r in gated["rejections"] if r["gate_name"] == "off_topic"}
    assert len(off) >= 4 and off <= {record_hash(r).hex() for r in drifted}  # no on-topic record flagged

    # one record each way: its fate, then retraction (the contributor's own, and the owner's takedown)
    gated_one = sorted(rejected)[0]
    shown_gate = as_json("datanet", "record", "cook", gated_one)
    assert shown_gate["status"] == "gate_rejected" and shown_gate["gate"]["gate_name"] == "near_duplicate"
    assert "gate verdict" in run("datanet", "record", "cook", gated_one).stdout
    by = {h: as_json("datanet", "record", "cook", h)["contributor"] for h in good}
    c1_addr, c2_addr = as_json("account", "show", "c1")["address"], as_json("account", "show", "c2")["address"]
    mine_ok = [h for h in good if by[h] == c1_addr]
    theirs_ok = [h for h in good if by[h] == c2_addr]
    assert mine_ok and theirs_ok
    fails("datanet", "retract", "cook", mine_ok[0], "--from", "c2", code="not_record_contributor")
    fails("datanet", "retract", "cook", theirs_ok[0], "--from", "c2", "--reason", "licence", code="not_datanet_owner")
    fails("datanet", "retract", "cook", gated_one, "--from", "owner", "--reason", "harmful", code="record_not_accepted")
    done = as_json("datanet", "retract", "cook", mine_ok[0], "--from", "c1")
    assert done["status"] == "retracted" and done["retracted"]["reason"] == "consent_withdrawn"
    down = as_json("datanet", "retract", "cook", theirs_ok[0], "--from", "owner", "--reason", "personal_data")
    assert down["retracted"] == {"height": down["tx"]["height"], "by": as_json("account", "show", "owner")["address"],
                                 "reason": "personal_data"}
    assert "no longer paid" in run("datanet", "record", "cook", theirs_ok[0]).stdout
    assert as_json("chain", "verify")["ok"]


@pytest.fixture
def cooked(home: Path, tmp_path: Path) -> Path:
    """A chain with Datanet `cook` (schema, quorum 1, window 2) and v1 registered; returns the data dir."""
    init_chain()
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    run("tx", "stake", "--from", "v1", "--amount", "10")
    run("datanet", "create", "cook", "--from", "owner", "--topic", "cooking", "--schema", str(schema),
        "--stake-per-record", "0.01", "--quorum", "1", "--window", "2")
    run("datanet", "register-validator", "cook", "--from", "v1")
    return home / "data"


GOOD = {"title": "Cumin", "text": "Toast the cumin seeds in a dry pan until fragrant, then grind them; it is deeper."}


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str, str]]:
    """name -> (file, error code, text the error must show)."""
    malformed = tmp / "malformed.jsonl"
    malformed.write_text(json.dumps(GOOD) + "\n\n{not json\n")
    latin = tmp / "latin.jsonl"
    latin.write_bytes(json.dumps(GOOD).encode() + b"\n" + '{"title": "caf\xe9"}\n'.encode("latin-1"))
    empty = tmp / "empty.jsonl"
    empty.write_text("")
    huge = write(tmp / "huge.jsonl", [{"title": "big", "text": "Stir the pot slowly. " * 1_000}])
    mismatch = write(tmp / "mismatch.jsonl", [{"text": GOOD["text"]}])
    return {"malformed": (malformed, "bad_record_file", "malformed.jsonl:3"),
            "latin": (latin, "not_utf8", "latin.jsonl:2"), "empty": (empty, "empty_file", "empty.jsonl"),
            "huge": (huge, "no_records_passed", "1 of 1"), "mismatch": (mismatch, "no_records_passed", "1 of 1")}


@pytest.mark.parametrize("case", ["malformed", "latin", "empty", "huge", "mismatch"])
def test_bad_files_change_nothing(cooked: Path, tmp_path: Path, case: str) -> None:
    path, code, shown = _bad_files(tmp_path)[case]
    blobs = BlobStore(cooked / "blobs")
    before, stored = ledger_now(), len(blobs)
    r = fails("datanet", "contribute", "cook", str(path), "--from", "c1", code=code)
    assert shown in r.stderr
    assert ledger_now() == before and len(blobs) == stored
    blobs.close()
    if code == "no_records_passed":
        report = json.loads(run("--json", "datanet", "contribute", "cook", str(path), "--from", "c1", exit=1).stdout)
        reason = {"huge": "schema/too_large", "mismatch": "schema/schema_mismatch"}[case]
        assert report["report"]["by_reason"] == {reason: 1}
        checked = as_json("datanet", "check", str(path), "--datanet", "cook")
        assert checked["records"][0]["verdicts"][0]["reason_name"] == reason.split("/")[1]


def test_refusals_change_nothing(cooked: Path, tmp_path: Path) -> None:
    good = write(tmp_path / "good.jsonl", [GOOD])
    bad_schema = tmp_path / "bad-schema.json"
    bad_schema.write_text(json.dumps({"type": "no-such-type"}))
    h = as_json("datanet", "contribute", "cook", str(good), "--from", "c1")
    assert h["staked"] == 1
    rec = record_hash(GOOD).hex()
    honest = [s.record for s in generate(8, seed=2, mix=SynthMix(0, 0, 0, 0, 0, 0))]  # 8 x 0.01 > poor's 0.05
    before = ledger_now()
    cases: list[tuple[list[str], str, int]] = [
        (["datanet", "contribute", "cook", str(write(tmp_path / "more.jsonl", honest)), "--from", "poor"],
         "insufficient_balance", 1),
        (["datanet", "vote", "cook", "accept", rec, "--from", "stranger"], "not_validator", 1),
        (["datanet", "vote", "cook", "accept", "abc", "--from", "v1"], "bad_record_hash", 1),
        (["datanet", "vote", "cook", "maybe", rec, "--from", "v1"], "", 2),
        (["datanet", "register-validator", "cook", "--from", "stranger"], "validator_stake_too_low", 1),
        (["datanet", "create", "cook", "--from", "c1", "--topic", "t", "--stake-per-record", "0.01", "--quorum", "1",
          "--window", "2"], "datanet_exists", 1),
        (["datanet", "create", "x", "--from", "c1", "--topic", "t", "--stake-per-record", "0.01", "--quorum", "1",
          "--window", "2", "--schema", str(bad_schema)], "bad_schema", 1),
        (["datanet", "create", "x", "--from", "c1", "--topic", "t", "--stake-per-record", "0.01", "--quorum", "1",
          "--window", "2", "--fee-split", "5000,5000,1,0"], "bad_datanet_param", 1),
        (["datanet", "create", "x", "--from", "c1", "--topic", "t", "--stake-per-record", "0.01", "--quorum", "1",
          "--window", "2", "--fee-split", "half"], "bad_argument", 2),
        (["datanet", "create", "Bad!", "--from", "c1", "--topic", "t", "--stake-per-record", "0.01", "--quorum", "1",
          "--window", "2"], "bad_datanet_name", 1),
        (["datanet", "add-gatekeeper", "cook", "c1", "--from", "c1"], "not_datanet_owner", 1),
        (["datanet", "snapshot", "cook", "--from", "c1"], "not_datanet_owner", 1),
        (["datanet", "gate", "cook", "--from", "c1", "--no-offtopic"], "not_gatekeeper", 1),
        (["datanet", "show", "nope"], "datanet_not_found", 1),
        (["datanet", "contribute", "nope", str(good), "--from", "c1"], "datanet_not_found", 1),
        (["datanet", "export", "cook", "--version", "3", "--out", str(tmp_path / "x.jsonl")], "version_not_found", 1),
        (["reputation", "show", "al1qqqq"], "bad_address", 1),
    ]
    for args, code, exit in cases:
        if code:
            fails(*args, code=code, exit=exit)
        else:
            run(*args, exit=exit)
        assert ledger_now() == before, args
    assert not (tmp_path / "x.jsonl").exists()
    run("tx", "transfer", "--from", "stranger", "--to", "owner", "--amount", "0.000001")
    run("tx", "transfer", "--from", "stranger", "--to", "owner", "--amount", "0.000001")
    after_window = ledger_now()
    fails("datanet", "vote", "cook", "accept", rec, "--from", "v1", code="vote_window_closed")
    assert ledger_now() == after_window
    assert as_json("datanet", "show", "cook")["counts"]["expired"] == 1


def test_datanet_over_http(home: Path, tmp_path: Path, synth: list[SynthRecord],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writerlock, "WRITER_WAIT_S", 0.2)
    init_chain()
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    honest = [s.record for s in synth if s.label == "honest"][:24]
    leaks = [s.record for s in synth if s.label == "pii"][:2]
    with running_node(home, home / "data", tmp_path / "node.log", 0.05) as url:
        node = ("--node", url)
        run("tx", "stake", "--from", "v1", "--amount", "10", *node)
        run("datanet", "create", "cook", "--from", "owner", "--topic", "cooking", "--schema", str(schema),
            "--stake-per-record", "0.01", "--quorum", "1", "--window", "6", "--pii", "redact", *node)
        run("datanet", "register-validator", "cook", "--from", "v1", *node)
        s1 = as_json("datanet", "contribute", "cook", str(write(tmp_path / "a.jsonl", honest[:12] + leaks)),
                     "--from", "c1", *node)
        s2 = as_json("datanet", "contribute", "cook", str(write(tmp_path / "b.jsonl", honest[6:])), "--from", "c2",
                     *node)
        assert s1["staked"] == 14 and s1["rejected"] == 0  # redact policy: the leaks are staked redacted
        assert (s2["staked"], s2["already_in_datanet"]) == (12, 6)
        dn = as_json("datanet", "show", "cook", *node)
        assert dn["counts"]["pending"] == 26 and dn["contributors_total"] == 2
        gated = as_json("datanet", "gate", "cook", "--from", "owner", "--no-offtopic", *node)
        assert gated["passed"] == 26 and gated["rejected"] == 0
        pending = as_json("datanet", "review", "cook", "--limit", "100", *node)["records"]
        assert not any(find_pii(r["text"]) for r in pending)
        hashes = [r["hash"] for r in pending]
        run("datanet", "vote", "cook", "accept", *hashes, "--from", "v1", *node)
        fails("datanet", "vote", "cook", "accept", hashes[0], "--from", "v1", *node, code="already_voted")
        advance_to(max(r["window_end"] for r in pending) + 1, *node)
        assert as_json("datanet", "show", "cook", *node)["counts"]["accepted"] == 26
        snap = as_json("datanet", "snapshot", "cook", "--from", "owner", *node)
        out = tmp_path / "v1.jsonl"
        as_json("datanet", "export", "cook", "--version", "1", "--out", str(out), *node)
        lines = out.read_bytes().splitlines()
        assert merkle_root([hashlib.sha256(line).digest() for line in lines]).hex() == snap["root"]
        assert len(lines) == 26 and not any(find_pii(line.decode()) for line in lines)
        assert not {record_hash(r).hex() for r in leaks} & {hashlib.sha256(line).hexdigest() for line in lines}
        rep = as_json("reputation", "show", "c2", *node)
        assert rep["roles"]["contributor"]["score_bps"] > 5_000
    assert as_json("chain", "verify")["ok"]
