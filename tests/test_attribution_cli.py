"""`ailedger attribution index/show/verify` end to end on the tiny model, on a real ledger in a data directory.

Four owners contribute twelve made-up facts and a stuffer four records that repeat the questions'
words (tests/attribution_sim.py); a validator accepts them all, the Datanet is frozen, the tiny base
is registered, an adapter is trained as a paid job and published. `attribution index` builds the
bundle from what the ledger says (records, contributors) and publishes its root; a record of an
answer is then shown and verified, and a tampered one is refused with a code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ailedger.attribution.attributor import Attributor, receipt_shares, record_bytes
from ailedger.cli.backend import open_backend
from ailedger.cli.output import Settings
from ailedger.core.address import encode_address
from ailedger.core.hashing import sha256
from ailedger.factory.basemodel import load_base
from ailedger.factory.tiny import build_tiny
from tests.attribution_sim import CODES, FACTS, NAMES, SPEC, STUFFING, answer, query, question
from tests.test_cli import as_json, fails, run
from tests.test_datanet_cli import advance_to, write

pytestmark = pytest.mark.timeout(300)  # the module's fixture trains and indexes an adapter (about 15 s when quiet)
OWNERS = ("alice", "bob", "carol", "dave")
HYPER = ("--rank", str(SPEC.rank), "--alpha", str(SPEC.alpha), "--epochs", str(SPEC.epochs), "--lr", str(SPEC.lr),
         "--batch-size", str(SPEC.batch_size), "--max-len", str(SPEC.max_len), "--seed", str(SPEC.seed),
         "--checkpoint-every", str(SPEC.checkpoint_every))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The ledger, the trained and published adapter and its indexed bundle; shared by the tests below."""
    tmp = tmp_path_factory.mktemp("world")
    h = tmp / "home"
    with pytest.MonkeyPatch.context() as mp:
        _environment(mp, h)
        for k in ("owner", "builder", "worker", "stranger", "validator", *OWNERS, "sam"):
            run("keys", "new", k)
        allocs = [a for k in ("owner", "builder", *OWNERS, "sam") for a in ("--alloc", f"{k}=100")]
        run("chain", "init", "--chain-id", "attr-cli", *allocs, "--alloc", "worker=10", "--alloc", "stranger=10",
            "--alloc", "validator=20", "--param", "datanet_min_window_blocks=1")
        run("tx", "stake", "--from", "validator", "--amount", "5")
        run("tx", "stake", "--from", "worker", "--amount", "2")
        run("datanet", "create", "facts", "--from", "owner", "--topic", "vault codes", "--stake-per-record", "0.01",
            "--quorum", "1", "--window", "20", "--neardup", "0.99")  # the facts share one template on purpose
        run("datanet", "register-validator", "facts", "--from", "validator")
        for i, who in enumerate(OWNERS):
            run("datanet", "contribute", "facts", str(write(tmp / f"{who}.jsonl", FACTS[i::4])), "--from", who)
        run("datanet", "contribute", "facts", str(write(tmp / "sam.jsonl", STUFFING)), "--from", "sam")
        pending = as_json("datanet", "review", "facts", "--limit", "100")["records"]
        run("datanet", "vote", "facts", "accept", *[r["hash"] for r in pending], "--from", "validator")
        advance_to(max(r["window_end"] for r in pending) + 1)
        assert as_json("datanet", "snapshot", "facts", "--from", "owner")["count"] == 16
        tiny = build_tiny(tmp / "tiny", seed=5)
        run("model", "register-base", "tiny", "--from", "builder", "--dir", str(tiny))
        adapter = tmp / "adapter"
        done = as_json("model", "train", "--datanet", "facts", "--version", "1", "--base", str(tiny), *HYPER,
                       "--out", str(adapter), "--from", "builder", "--worker", "worker", "--budget", "5",
                       "--deadline", "100")
        run("model", "publish", "facts-lora", "--from", "builder", "--base", "tiny", "--adapter-dir", str(adapter),
            "--datanet", "facts", "--version", "1", "--price", "0.002", "--job", done["job_id"])
        built = as_json("attribution", "index", str(adapter), "--base", str(tiny), "--k", "512", "--publish",
                        "--from", "builder")
        keys = {k: as_json("keys", "show", k)["address"] for k in (*OWNERS, "sam")}
        yield {"home": h, "tmp": tmp, "tiny": tiny, "adapter": adapter, "built": built, "keys": keys}


def _environment(mp: pytest.MonkeyPatch, h: Path) -> None:
    mp.setenv("AILEDGER_HOME", str(h))
    mp.setenv("AILEDGER_PASSPHRASE", "pw")
    mp.setenv("AILEDGER_KDF_COST", "test")
    mp.delenv("AILEDGER_NODE", raising=False)


@pytest.fixture
def env(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    _environment(monkeypatch, world["home"])
    return world


def test_index_builds_from_the_ledger_and_publishes_its_root(env: dict[str, Any]) -> None:
    built = env["built"]
    assert built["records"] == 16 and built["contributors"] == 5 and built["k"] == 512
    assert built["published"]["model"] == "facts-lora@1"
    assert as_json("model", "show", "facts-lora")["attribution_root"] == built["root"]
    manifest = json.loads((env["adapter"] / "attribution" / "manifest.json").read_text())
    assert manifest["root"] == built["root"]
    assert set(manifest["contributors"]) == set(env["keys"].values())  # the ledger's contributors, all of them
    again = as_json("attribution", "index", str(env["adapter"]), "--base", str(env["tiny"]), "--k", "512")
    assert again["root"] == built["root"] and again["published"] is None  # same inputs, same root


def test_show_and_verify_a_record(env: dict[str, Any]) -> None:
    base = load_base(env["tiny"])
    attributor = Attributor.load(env["adapter"], base, env["built"]["root"])
    record = attributor.attribute(*query(base, question(NAMES[5]), answer(NAMES[5], CODES[5])))
    path = env["tmp"] / "record.json"
    path.write_bytes(record_bytes(record))
    receipt = "ab" * 32
    shown = as_json("attribution", "show", receipt, "--file", str(path))
    assert shown == record
    owner = env["keys"][OWNERS[5 % 4]]
    assert max(shown["shares"], key=lambda s: s["bp"])["contributor"] == owner
    assert env["keys"]["sam"] not in {s["contributor"] for s in shown["shares"]}
    text = run("attribution", "show", receipt, "--file", str(path)).stdout
    assert owner in text and "influence" in text and "verbatim" in text
    ok = as_json("attribution", "verify", receipt, "--file", str(path), "--adapter", str(env["adapter"]), "--base",
                 str(env["tiny"]))
    assert ok["matches"] and ok["differences"] == []
    record["shares"] = [{"contributor": encode_address(bytes.fromhex("09" * 20)), "bp": 10_000}]
    path.write_bytes(record_bytes(record))
    r = fails("attribution", "verify", receipt, "--file", str(path), "--adapter", str(env["adapter"]), "--base",
              str(env["tiny"]), code="attribution_verify_failed")
    assert "does NOT match" in r.stdout


def test_bad_input_gets_codes(env: dict[str, Any]) -> None:
    fails("attribution", "show", "xyz", "--file", str(env["tmp"] / "alice.jsonl"), code="bad_receipt_id")
    fails("attribution", "show", "ab" * 32, code="receipt_not_found")  # no such receipt on the ledger
    fails("attribution", "index", str(env["adapter"]), "--base", str(env["tiny"]), "--publish",
          code="bad_argument", exit=2)
    other = env["tmp"] / "no-bundle"
    other.mkdir(exist_ok=True)
    fails("attribution", "verify", "ab" * 32, "--file", str(env["tmp"] / "record.json"), "--adapter", str(other),
          "--base", str(env["tiny"]), code="adapter_invalid")


def test_show_and_verify_from_the_ledger(env: dict[str, Any]) -> None:
    """A receipt on the ledger names the record by hash; show and verify fetch it and check it against the receipt."""
    base = load_base(env["tiny"])
    attributor = Attributor.load(env["adapter"], base, env["built"]["root"])
    record = attributor.attribute(*query(base, question(NAMES[2]), answer(NAMES[2], CODES[2])))
    body = record_bytes(record)
    with open_backend(Settings(home=env["home"]), None, None, write=True) as backend:
        assert backend.put_blobs([body]) == [sha256(body).hex()]
    run("billing", "deposit", "1", "--from", "stranger")
    key = as_json("billing", "key", "create", "--provider", "owner", "--allowance", "1",
                  "--from", "stranger")["api_key"]
    model = as_json("model", "show", "facts-lora")
    shares = [{"record": h.hex(), "bp": bp} for h, bp in receipt_shares(record)]
    unpaid = next(h.hex() for h in attributor.bundle.record_hashes if h.hex() not in {s["record"] for s in shares})
    receipts = [{"id": rid * 32, "key": key, "model": "facts-lora", "version": 1,
                 "base_hash": model["base"]["weights_hash"], "adapter_hash": model["adapter_hash"],
                 "prompt_tokens": len(record["prompt_tokens"]), "completion_tokens": len(record["answer_tokens"]),
                 "citations": [], "attribution": sha256(body).hex(), "shares": s}
                for rid, s in (("c1", shares), ("c2", [{"record": unpaid, "bp": 10_000}]))]
    path = env["tmp"] / "receipts.json"
    path.write_text(json.dumps(receipts))
    run("billing", "submit-receipts", str(path), "--from", "owner")
    assert as_json("attribution", "show", "c1" * 32) == record
    ok = as_json("attribution", "verify", "c1" * 32, "--adapter", str(env["adapter"]), "--base", str(env["tiny"]))
    assert ok["matches"] and ok["checked_against_ledger"]
    # the second receipt pays a record its attribution record does not: refused
    r = fails("attribution", "verify", "c2" * 32, "--adapter", str(env["adapter"]), "--base", str(env["tiny"]),
              code="attribution_verify_failed")
    assert "the receipt's shares are not the record's" in r.stdout
    fails("attribution", "show", "ee" * 32, code="receipt_not_found")
