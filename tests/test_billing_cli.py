"""`ailedger billing` end to end: the embedded data directory and a real node over HTTP.

A base model registered by its hashes stands in for the served weights; receipts are base-only
calls (version 0) priced by `billing_base_price_per_1k`. A provider submits them from a JSON file
as `ailedger serve` would in batches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ailedger.api.client import HttpClient
from ailedger.billing.keys import api_key_hash
from ailedger.chain import writerlock
from ailedger.cli.backend import Embedded
from ailedger.cli.demo import running_node
from tests.test_cli import as_json, fails, home, run
from tests.test_datanet_cli import ledger_now

__all__ = ["home"]

WEIGHTS = "ee" * 32
FEE = 1_000


def init_chain() -> None:
    for k in ("alice", "server", "bob"):
        run("keys", "new", k)
    run("chain", "init", "--chain-id", "billing-cli", "--alloc", "alice=100", "--alloc", "server=10",
        "--alloc", "bob=10", "--param", "billing_withdraw_delay_blocks=2", "--param", "billing_base_price_per_1k=2000")


def register_base(*node: str) -> None:
    run("model", "register-base", "tiny", "--from", "alice", "--weights-hash", WEIGHTS, "--config-hash", "cc" * 32,
        "--arch", "LlamaForCausalLM", "--params", "1000", "--context", "128", *node)


def receipts_file(path: Path, key: str, *specs: tuple[int, int, int]) -> Path:
    """Receipts (id byte, prompt tokens, completion tokens) of base-only calls; the first names the key, the
    others its hash, as either form is accepted."""
    items: list[dict[str, Any]] = []
    for n, (i, prompt, completion) in enumerate(specs):
        who = {"key": key} if n == 0 else {"key_hash": api_key_hash(key).hex()}
        items.append({"id": f"{i:02x}" * 32, **who, "model": "tiny", "version": 0, "base_hash": WEIGHTS,
                      "prompt_tokens": prompt, "completion_tokens": completion, "citations": ["ab" * 32]})
    path.write_text(json.dumps(items))
    return path


def balance(name: str, *node: str) -> int:
    return int(as_json("account", "show", name, *node)["balance"])


def test_billing_embedded(home: Path, tmp_path: Path) -> None:
    init_chain()
    register_base()
    a0 = balance("alice")
    acct = as_json("billing", "deposit", "5", "--from", "alice")
    assert (acct["prepaid"], acct["withdrawing"], acct["available"], acct["keys"]) == (5_000_000, 0, 5_000_000, [])
    assert acct["tx"]["receipt"]["ok"] and balance("alice") == a0 - 5_000_000 - FEE

    created = as_json("billing", "key", "create", "--provider", "server", "--allowance", "0.01", "--from", "alice")
    key = created["api_key"]
    assert key.startswith("alk_") and created["key_hash"] == api_key_hash(key).hex()
    assert created["provider"] == as_json("keys", "show", "server")["address"]
    assert (created["allowance"], created["remaining"], created["live"]) == (10_000, 10_000, True)
    assert "stored nowhere" in created["note"]
    text = run("billing", "key", "create", "--provider", "server", "--allowance", "1", "--expires", "100",
               "--from", "alice").stdout
    assert "alk_" in text and "shown only this once" in text
    assert as_json("billing", "key", "show", key) == as_json("billing", "key", "show", created["key_hash"].upper())

    # the provider submits receipts: 2,500 tokens at 2,000 per 1k = 5,000; then 1 token -> ceil(2) = 2; the third
    # (3,000 tokens = 6,000) finds 4,998 of the 10,000 allowance left: short
    path = receipts_file(tmp_path / "r.json", key, (1, 2_000, 500), (2, 1, 0), (3, 3_000, 0))
    sent = as_json("billing", "submit-receipts", str(path), "--from", "server")
    assert [(r["fee"], r["charged"], r["status"]) for r in sent["receipts"]] == [
        (5_000, 5_000, "charged"), (2, 2, "charged"), (6_000, 4_998, "short")]
    r1 = as_json("billing", "receipt", "01" * 32)
    assert r1 == sent["receipts"][0] and r1["citations"] == ["ab" * 32] and r1["caller"] == acct["address"]
    assert r1["settled"] is True  # its block settled it (docs/settlement.md)
    assert "charged" in run("billing", "receipt", "01" * 32).stdout
    listed = as_json("billing", "receipts", "--key", key, "--limit", "2")
    assert [r["id"] for r in listed["receipts"]] == ["01" * 32, "02" * 32] and listed["next_offset"] == 2
    assert as_json("billing", "receipts")["total"] == 3 and "short" in run("billing", "receipts").stdout
    assert as_json("billing", "key", "show", key)["spent"] == 10_000
    assert as_json("billing", "escrow")["escrowed"] == 0  # settled in the block that stored the receipts
    fails("billing", "submit-receipts", str(path), "--from", "server", code="duplicate_receipt")
    assert r1["attribution"] == "00" * 32 and r1["shares"] == []
    assert "attribution" in run("billing", "receipt", "01" * 32).stdout
    attributed = json.loads(receipts_file(tmp_path / "a.json", key, (9, 1, 1)).read_text())
    attributed[0]["attribution"] = "cd" * 32  # a base-only call learnt from no Datanet: it pays no contributor
    attributed[0]["shares"] = [{"record": "ef" * 32, "bp": 10_000}]
    (tmp_path / "a.json").write_text(json.dumps(attributed))
    fails("billing", "submit-receipts", str(tmp_path / "a.json"), "--from", "server", code="bad_billing_param")

    # withdraw: waits two blocks, still chargeable meanwhile
    shown = as_json("billing", "withdraw", "1", "--from", "alice")
    assert (shown["prepaid"], shown["withdrawing"]) == (5_000_000 - 10_000 - 1_000_000, 1_000_000)
    assert shown["release_height"] == shown["tx"]["height"] + 2
    assert as_json("billing", "show", "alice") == as_json("billing", "show", "--from", "alice")
    assert "withdrawing" in run("billing", "show", "alice").stdout
    run("billing", "deposit", "0.5", "--from", "bob")
    run("billing", "deposit", "0.5", "--from", "bob")  # the second block: the withdrawal is back
    assert as_json("billing", "show", "alice")["withdrawing"] == 0

    # revoke, and the refusals: each names its code; checked ones cost nothing
    fails("billing", "key", "revoke", key, "--from", "bob", code="not_key_owner")
    revoked = as_json("billing", "key", "revoke", key, "--from", "alice")
    assert revoked["revoked"] and not revoked["live"] and revoked["revoked_height"] == revoked["tx"]["height"]
    before = ledger_now()
    cases: list[tuple[list[str], str, int]] = [
        (["billing", "key", "revoke", key, "--from", "alice"], "api_key_revoked", 1),
        (["billing", "withdraw", "1000", "--from", "alice"], "insufficient_prepaid", 1),
        (["billing", "withdraw", "0", "--from", "alice"], "zero_amount", 1),
        (["billing", "key", "show", "alk_nope"], "bad_api_key", 1),
        (["billing", "key", "show", "zz"], "bad_key_hash", 1),
        (["billing", "key", "show", "cd" * 32], "api_key_not_found", 1),
        (["billing", "receipt", "00" * 32], "receipt_not_found", 1),
        (["billing", "receipt", "xyz"], "bad_receipt_id", 1),
        (["billing", "show"], "bad_argument", 2),
        (["billing", "show", "al1nothing"], "bad_address", 1),
        (["billing", "submit-receipts", str(tmp_path / "missing.json"), "--from", "server"], "file_unreadable", 1),
    ]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "12", "key": key, "model": "tiny", "base_hash": WEIGHTS}]))
    cases.append((["billing", "submit-receipts", str(bad), "--from", "server"], "bad_receipt_file", 1))
    for args, code, exit in cases:
        fails(*args, code=code, exit=exit)
        assert ledger_now() == before, args
    err = json.loads(run("--json", "billing", "receipt", "00" * 32, exit=1).stdout)["error"]
    assert err["code"] == "receipt_not_found" and err["number"] == 1610
    assert as_json("chain", "verify")["ok"]


def test_billing_over_http(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writerlock, "WRITER_WAIT_S", 0.2)
    init_chain()
    with running_node(home, home / "data", tmp_path / "node.log", 0.05) as url:
        node = ("--node", url)
        register_base(*node)
        run("billing", "deposit", "1", "--from", "alice", *node)
        key = as_json("billing", "key", "create", "--provider", "server", "--allowance", "1", "--from", "alice",
                      *node)["api_key"]
        kh = api_key_hash(key).hex()
        path = receipts_file(tmp_path / "r.json", key, (7, 10, 5))
        assert as_json("billing", "submit-receipts", str(path), "--from", "server", *node)["receipts"][0]["fee"] == 30
        fails("billing", "key", "revoke", key, "--from", "bob", *node, code="not_key_owner")
        alice = as_json("keys", "show", "alice")["address"]
        with HttpClient(url) as client:
            seen = {"account": client.billing_account(alice), "key": client.billing_key(kh),
                    "receipt": client.billing_receipt("07" * 32), "receipts": client.billing_receipts(kh, 0, 10),
                    "all": client.billing_receipts(), "escrow": client.billing_escrow()}
        assert seen["key"]["spent"] == 30 and seen["escrow"] == {**seen["escrow"], "escrowed": 0, "receipts": 1}
        assert seen["receipts"]["receipts"] == [seen["receipt"]] == seen["all"]["receipts"]
        for path_, status, code in [(f"/v1/billing/keys/{'0' * 64}", 404, "api_key_not_found"),
                                    (f"/v1/billing/receipts/{'0' * 64}", 404, "receipt_not_found"),
                                    (f"/v1/billing/receipts?key={'0' * 64}", 404, "api_key_not_found"),
                                    ("/v1/billing/keys/xyz", 400, "bad_key_hash"),
                                    ("/v1/billing/receipts?limit=0", 400, "bad_request"),
                                    ("/v1/billing/receipts?offset=x", 400, "bad_request"),
                                    ("/v1/billing/accounts/al1nope", 400, "bad_address")]:
            r = httpx.get(url + path_)
            assert r.status_code == status and r.json()["error"]["code"] == code, path_
            assert set(r.json()["error"]) == {"code", "number", "message", "detail"}
        assert httpx.get(f"{url}/v1/billing/escrow").json()["escrowed"] == 0
    embedded = Embedded(home / "data", write=False)  # the same calls, in-process: the same documents
    try:
        assert {"account": embedded.billing_account(alice), "key": embedded.billing_key(kh),
                "receipt": embedded.billing_receipt("07" * 32), "receipts": embedded.billing_receipts(kh, 0, 10),
                "all": embedded.billing_receipts(), "escrow": embedded.billing_escrow()} == seen
    finally:
        embedded.close()
