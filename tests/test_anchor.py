"""Anchoring on a real EVM chain: the contract against its source, deploy, anchor, verify, tamper, outages.

Every test runs a real anvil (tests/anvil_fixture.py) and drives the real `ailedger anchor` commands;
the ledger is the same SQLite chain the CLI tests build (alice 1000 units, bob 10).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ailedger.chain.accounts import Account, account_key, encode_account
from ailedger.chain.anchor.artifact import load_artifact
from ailedger.chain.anchor.contract import AnchorContract, connect
from ailedger.chain.anchor.evmkey import parse_key
from ailedger.chain.anchor.record import Anchor
from ailedger.chain.store import Store
from ailedger.cli.demo import running_node
from ailedger.core.address import decode_address
from ailedger.core.errors import LedgerError
from tests.anvil_fixture import DEV_ADDRESSES, DEV_KEYS, EVM_BUILD, ROOT, Anvil, anvil, free_port
from tests.pg_server import execute_sql
from tests.test_cli import as_json, fails, home, run

__all__ = ["anvil", "home"]


@pytest.fixture
def chain(home: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    """The CLI tests' chain (alice 1000, bob 10), and anvil's first dev key as the anchorer.

    In SQLite; a test that also asks for `store_url` gets its chain in that store instead.
    """
    monkeypatch.setenv("AILEDGER_ANCHOR_KEY", DEV_KEYS[0])
    run("keys", "new", "alice")
    run("keys", "new", "bob")
    url = request.getfixturevalue("store_url") if "store_url" in request.fixturenames else None
    run("chain", "init", "--chain-id", "anchor-test", "--alloc", "alice=1000", "--alloc", "bob=10",
        *(["--store", url] if url else []))
    return home / "data"


def transfers(n: int, *via: str) -> list[str]:
    """n transfers alice -> bob, one block each (in-process, or through `--node URL`); returns their ids."""
    return [as_json("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1", *via)["id"]
            for _ in range(n)]


def deploy(node: Anvil) -> str:
    out = as_json("anchor", "deploy", "--rpc", node.url)
    assert out["anchorer"] == DEV_ADDRESSES[0] and out["ledger_chain_id"] == "anchor-test"
    assert out["evm_chain_id"] == 31337
    return str(out["contract"])


def anchor_until(node: Anvil, contract: str, height: int, every: int = 2) -> list[dict[str, Any]]:
    out = as_json("anchor", "start", "--rpc", node.url, "--contract", contract, "--every", str(every),
                  "--until-height", str(height), "--poll", "0.05")
    return list(out["posted"])


def test_artifact_is_what_the_source_compiles_to(tmp_path: Path) -> None:
    """Recompile evm/LedgerAnchor.sol with the installed solcjs: same ABI, bytecode, compiler; source hash matches."""
    source = ROOT / "evm" / "LedgerAnchor.sol"
    out = tmp_path / "recompiled.json"
    subprocess.run(["node", str(ROOT / "evm" / "compile.mjs"), str(source), str(out)], cwd=EVM_BUILD, check=True,
                   timeout=120)
    fresh = json.loads(out.read_text())
    art = load_artifact()
    assert art.source_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert (fresh["abi"], fresh["bytecode"], fresh["deployed_bytecode"]) == (art.abi, art.bytecode,
                                                                            art.deployed_bytecode)
    assert fresh["solc_version"] == art.solc_version and art.solc_version.startswith("0.8.37+")


def test_anchor_every_n_blocks_resume_and_verify(chain: Path, anvil: Anvil) -> None:
    contract = deploy(anvil)
    transfers(3)
    posted = anchor_until(anvil, contract, 2)
    assert [p["height"] for p in posted] == [2]
    transfers(3)  # head 6: after a pause only the newest due height is posted, resuming from the contract
    assert [p["height"] for p in anchor_until(anvil, contract, 6)] == [6]
    listed = as_json("anchor", "list", "--rpc", anvil.url, "--contract", contract)
    assert [a["height"] for a in listed["anchors"]] == [2, 6] and listed["last_height"] == 6
    store = Store.open(chain)
    try:
        assert listed["anchors"][1]["block_hash"] == store.header(6).hash.hex()
        assert listed["anchors"][1]["state_root"] == store.header(6).state_root.hex()
    finally:
        store.close()
    report = as_json("anchor", "verify", "--rpc", anvil.url, "--contract", contract)
    assert report["ok"] and report["anchors_checked"] == 2 and report["blocks_replayed"] == 6
    assert report["state_rows_checked"]


def _edit_tx_row(data: Path, height: int) -> None:
    store = Store.open(data)
    try:
        [(_, raw, _)] = store.block_txs(height, 0, 1)
    finally:
        store.close()
    edited = bytearray(raw)
    edited[-70] ^= 0x01  # a byte inside the transfer's payload, behind the node's back
    execute_sql(data, f"UPDATE txs SET raw=x'{edited.hex()}' WHERE height={height}")


def _edit_state_row(data: Path, who: str) -> None:
    value, key = encode_account(Account(balance=10**15)), account_key(decode_address(who))
    execute_sql(data, f"UPDATE state SET value=x'{value.hex()}' WHERE key=x'{key.hex()}'")


@pytest.mark.parametrize(("edit", "first_bad"), [("tx-row", 3), ("state-row", 4)])
def test_verify_names_the_first_block_that_no_longer_matches(chain: Path, anvil: Anvil, edit: str,
                                                            first_bad: int, store_url: str | None) -> None:
    """Both stores: the database edited behind the node's back (SQLite file or PostgreSQL rows)."""
    contract = deploy(anvil)
    transfers(4)
    anchor_until(anvil, contract, 4)
    args = ("anchor", "verify", "--rpc", anvil.url, "--contract", contract)
    assert as_json(*args)["ok"]
    if edit == "tx-row":
        _edit_tx_row(chain, 3)
    else:
        _edit_state_row(chain, as_json("keys", "show", "bob")["address"])
    r = fails(*args, code="anchor_mismatch")
    assert f"first bad block at height {first_bad}" in r.stderr
    doc = json.loads(run("--json", *args, exit=1).stdout)
    assert doc["report"]["first_bad_height"] == first_bad and doc["error"]["code"] == "anchor_mismatch"


def test_only_the_anchorer_posts_and_heights_increase(chain: Path, anvil: Anvil,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    contract = deploy(anvil)
    transfers(2)
    monkeypatch.setenv("AILEDGER_ANCHOR_KEY", DEV_KEYS[1])
    fails("anchor", "start", "--rpc", anvil.url, "--contract", contract, "--every", "2", "--until-height", "2",
          code="anchor_not_anchorer")  # refused before any gas is spent
    target = AnchorContract(anvil.url, contract)
    store = Store.open(chain)
    try:
        a2 = Anchor.of(store.header(2))
    finally:
        store.close()
    stranger = parse_key(DEV_KEYS[1])
    with pytest.raises(LedgerError) as refused:  # the contract itself refuses (the gas estimate reverts)
        target.post(stranger, a2)
    assert refused.value.code.name == "anchor_not_anchorer" and DEV_ADDRESSES[1] in refused.value.detail
    # and a transaction mined anyway, with its gas given, reverts and leaves no anchor
    w3 = connect(anvil.url)
    tx = target.contract.functions.anchor(2, a2.block_hash, a2.state_root, a2.receipts_root).build_transaction(
        {"from": DEV_ADDRESSES[1], "gas": 200_000, "nonce": w3.eth.get_transaction_count(DEV_ADDRESSES[1])})
    signed = w3.eth.account.sign_transaction(tx, DEV_KEYS[1])
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    assert receipt["status"] == 0 and target.last_height() == 0 and target.anchor_at(2) is None
    owner = parse_key(DEV_KEYS[0])
    target.post(owner, a2)
    with pytest.raises(LedgerError) as again:
        target.post(owner, a2)
    assert again.value.code.name == "anchor_height_not_increasing"
    held = target.anchor_at(2)
    assert held is not None and replace(held, evm_block=0) == a2


def _anchor_process(home: Path, node: Anvil, contract: str, until: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "ailedger.cli.main", "--home", str(home), "anchor", "start", "--rpc", node.url,
           "--contract", contract, "--every", "2", "--poll", "0.1", "--max-backoff", "0.5", "--until-height",
           str(until)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_rpc_down_anchoring_waits_and_resumes(chain: Path, home: Path, tmp_path: Path) -> None:
    """The EVM node goes away mid-run: the ledger node keeps making blocks, the loop waits, then anchors them."""
    evm = Anvil(free_port(), tmp_path / "evm-state.json")
    evm.start()
    proc = None
    try:
        contract = deploy(evm)
        with running_node(home, chain, tmp_path / "node.log", 0.1) as url:  # the ledger: its own process
            node = ("--node", url)
            transfers(2, *node)
            proc = _anchor_process(home, evm, contract, until=6)
            target = AnchorContract(evm.url, contract)
            _wait_for(lambda: target.last_height() == 2, 30, "the first anchor")
            evm.stop()  # the RPC is down; anvil has written its state file
            transfers(4, *node)  # ... and the ledger goes on producing blocks: head 6
            assert as_json("status", *node)["height"] == 6
            time.sleep(2)  # several retries while down
            assert proc.poll() is None, proc.communicate()
            evm.start()  # the same EVM chain comes back on the same port
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            assert "is down" in err and "retrying in" in err and "answers again" in err, err
            assert err.index("is down") < err.index("answers again") < err.index("anchored block 6")
            assert AnchorContract(evm.url, contract).last_height() == 6
        assert as_json("anchor", "verify", "--rpc", evm.url, "--contract", contract)["anchors_checked"] == 2
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        evm.stop()


def test_commands_refuse_a_down_rpc_and_a_wrong_contract(chain: Path, anvil: Anvil) -> None:
    fails("anchor", "list", "--rpc", f"http://127.0.0.1:{free_port()}", "--contract", "0x" + "11" * 20,
          code="anchor_rpc_down")
    fails("anchor", "list", "--rpc", anvil.url, "--contract", DEV_ADDRESSES[1], code="anchor_no_contract")
    fails("anchor", "list", "--rpc", anvil.url, "--contract", "0x1234", code="anchor_bad_evm_address")
    fails("anchor", "deploy", "--rpc", anvil.url, "--key-file", str(chain / "genesis.json"), code="anchor_bad_key")
    key_file = chain.parent / "evm.key"
    key_file.write_text(DEV_KEYS[1] + "\n")  # the payer need not be the anchorer
    out = as_json("anchor", "deploy", "--rpc", anvil.url, "--key-file", str(key_file), "--anchorer", DEV_ADDRESSES[0])
    assert out["anchorer"] == DEV_ADDRESSES[0]
    assert AnchorContract(anvil.url, out["contract"]).anchorer() == DEV_ADDRESSES[0]


def test_receipt_and_account_proofs_check_against_the_evm_chain_alone(
        chain: Path, anvil: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contract = deploy(anvil)
    ids = transfers(4)
    anchor_until(anvil, contract, 4)
    rpc = ("--rpc", anvil.url)
    at_head = json.loads(run("anchor", "prove", *rpc, "--contract", contract, "--account", "bob").stdout)
    transfers(1)  # head 5: past the last anchor
    bob = as_json("keys", "show", "bob")["address"]
    receipt_file, account_file = tmp_path / "receipt.json", tmp_path / "account.json"
    run("anchor", "prove", *rpc, "--contract", contract, "--receipt", ids[2], "--out", str(receipt_file))
    run("anchor", "prove", *rpc, "--contract", contract, "--account", "bob", "--out", str(account_file))
    fails("anchor", "prove", *rpc, "--contract", contract, "--receipt", transfers(1)[0], code="anchor_not_yet")
    fails("anchor", "prove", *rpc, "--contract", contract, "--account", "bob", "--height", "3", code="anchor_not_yet")

    in_anchored = tmp_path / "receipt-4.json"  # a receipt in the anchored block itself: one header
    run("anchor", "prove", *rpc, "--contract", contract, "--receipt", ids[3], "--out", str(in_anchored))
    assert len(json.loads(in_anchored.read_text())["headers"]) == 1
    assert as_json("anchor", "check-proof", str(in_anchored), *rpc)["proven"]["tx_id"] == ids[3]
    assert json.loads(account_file.read_text()) == at_head  # replayed to 4 = the stored state when 4 was the head
    run("keys", "new", "carol")
    fails("anchor", "prove", *rpc, "--contract", contract, "--account", "carol", code="not_found")

    receipt_doc = json.loads(receipt_file.read_text())
    assert receipt_doc["kind"] == "receipt" and len(receipt_doc["headers"]) == 2  # block 3 up to anchored block 4
    assert receipt_doc["anchor"]["height"] == 4 and receipt_doc["anchor"]["contract"] == contract

    # The checker holds no ledger at all: an empty home, only the EVM RPC.
    monkeypatch.setenv("AILEDGER_HOME", str(tmp_path / "empty-home"))
    checked = as_json("anchor", "check-proof", str(receipt_file), *rpc, "--contract", contract)
    assert checked["ok"] and checked["height"] == 3 and checked["proven"]["tx_id"] == ids[2]
    assert checked["headers_checked"] == 2 and checked["contract_pinned"]
    account = as_json("anchor", "check-proof", str(account_file), *rpc)
    assert account["proven"]["address"] == bob and account["height"] == 4
    assert account["proven"]["balance"] == 14_000_000 and not account["contract_pinned"]  # as of block 4, not 5
    assert "valid" in run("anchor", "check-proof", str(account_file), *rpc).stdout

    def tampered(doc: dict[str, Any], edit: Any) -> Path:
        copy = json.loads(json.dumps(doc))
        edit(copy)
        path = tmp_path / "tampered.json"
        path.write_text(json.dumps(copy))
        return path

    account_doc = json.loads(account_file.read_text())
    edits = [  # (document, edit, the broken link the refusal names)
        (receipt_doc, lambda d: d["proof"].update(receipt=d["proof"]["receipt"][:-2] + "ff"),  # the fee
         "does not hash up to the receipts root"),
        (receipt_doc, lambda d: d["headers"].__setitem__(0, d["headers"][0][:-2] + "00"),  # block 3's state root
         "header 4 does not extend header 3"),
        (receipt_doc, lambda d: d["headers"].pop(0), "another block than the first header"),  # skip a header
        (receipt_doc, lambda d: d["anchor"].update(tx_hash="0x" + "ab" * 32), "no transaction 0xabab"),
        (receipt_doc, lambda d: d["anchor"].update(evm_chain_id=1), "the document names 1"),
        (account_doc, lambda d: d["proof"]["account"].update(balance=10**12), "does not hash up to the state root"),
        (account_doc, lambda d: d["anchor"].update(state_root="00" * 32), "does not hold the document's anchor"),
        (account_doc, lambda d: d.update(format="something else"), "malformed document"),
    ]
    for doc, edit, why in edits:
        r = fails("anchor", "check-proof", str(tampered(doc, edit)), *rpc, code="anchor_proof_invalid")
        assert why in r.stderr, (why, r.stderr)
    fails("anchor", "check-proof", str(receipt_file), *rpc, "--contract", DEV_ADDRESSES[1],
          code="anchor_proof_invalid")  # pinned to another contract than the document's


def test_a_rewritten_chain_is_caught_and_never_anchored(chain: Path, home: Path, anvil: Anvil) -> None:
    """A fork signed with the real proposer key replays cleanly, yet its hashes are not the anchored ones."""
    contract = deploy(anvil)
    transfers(2)
    anchor_until(anvil, contract, 2)
    fork = home / "fork"
    fork.mkdir()
    shutil.copy(chain / "node_key.json", fork / "node_key.json")  # the operator holds the proposer key...
    run("chain", "init", "--data-dir", str(fork), "--genesis", str(chain / "genesis.json"))
    for amount in ("5", "6", "7", "8"):  # ...and writes other history from the same genesis
        run("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", amount, "--data-dir", str(fork))
    assert as_json("chain", "verify", "--data-dir", str(fork))["ok"]
    r = fails("anchor", "verify", "--rpc", anvil.url, "--contract", contract, "--data-dir", str(fork),
              code="anchor_mismatch")
    assert "first bad block at height 2" in r.stderr and "rewritten in blocks 1..2" in r.stderr
    fails("anchor", "start", "--rpc", anvil.url, "--contract", contract, "--every", "2", "--until-height", "4",
          "--data-dir", str(fork), code="anchor_mismatch")
    assert AnchorContract(anvil.url, contract).last_height() == 2


def test_plain_ledger_use_never_imports_web3() -> None:
    """web3 costs about a second to import: only the anchoring commands may pay for it."""
    code = "import sys, ailedger.cli.main, ailedger.chain.anchor.poster; sys.exit('web3' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60, check=False).returncode == 0
