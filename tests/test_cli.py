"""The `ailedger` command line, driven in-process with CliRunner and as a real process.

Keys use AILEDGER_KDF_COST=test (libsodium's minimum Argon2id cost) so each unlock takes
microseconds; the real cost is covered by tests/test_keystore.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ailedger.chain import writerlock
from ailedger.cli.demo import running_node
from ailedger.cli.main import app

runner = CliRunner()
EXE = Path(sys.executable).with_name("ailedger")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home [x]"  # brackets would be eaten by Rich markup if any path were printed as markup
    monkeypatch.setenv("AILEDGER_HOME", str(h))
    monkeypatch.setenv("AILEDGER_PASSPHRASE", "pw")
    monkeypatch.setenv("AILEDGER_KDF_COST", "test")
    monkeypatch.delenv("AILEDGER_NODE", raising=False)
    return h


def run(*args: str, exit: int = 0) -> Result:
    r = runner.invoke(app, list(args))
    assert r.exit_code == exit, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r


def fails(*args: str, code: str, exit: int = 1) -> Result:
    r = run(*args, exit=exit)
    assert f"error[{code}]: " in r.stderr, r.output
    return r


def as_json(*args: str) -> Any:
    return json.loads(run("--json", *args).stdout)


@pytest.fixture
def chain(home: Path, store_url: str | None) -> Path:
    """Keys alice, bob; a chain (on each store) where alice has 1000 units and bob 10; unbonding takes 2 blocks."""
    run("keys", "new", "alice")
    run("keys", "new", "bob")
    run("chain", "init", "--chain-id", "cli-test", "--alloc", "alice=1000", "--alloc", "bob=10",
        "--param", "unbonding_blocks=2", *(["--store", store_url] if store_url else []))
    return home / "data"


def test_keys_new_list_show(home: Path) -> None:
    created = as_json("keys", "new", "alice")
    run("keys", "new", "bob")
    path = home / "keys" / "alice.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [k["name"] for k in as_json("keys", "list")] == ["alice", "bob"]
    shown = as_json("keys", "show", "alice")
    assert shown["address"] == created["address"] and shown["public_key"] == created["public_key"]
    assert "seed" not in json.dumps(shown) and "ciphertext" not in json.dumps(shown)
    text = run("keys", "show", "alice").stdout
    assert created["address"] in text and created["public_key"] in text and str(path) in text
    fails("keys", "new", "alice", code="key_exists")
    fails("keys", "new", "../evil", code="bad_key_name")
    fails("keys", "show", "nobody", code="key_not_found")


def test_passphrase_sources(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AILEDGER_PASSPHRASE")
    fails("keys", "new", "alice", code="no_passphrase")  # CliRunner's stdin is not a terminal
    secret = tmp_path / "pass.txt"
    secret.write_text("from a file\n")
    run("keys", "new", "alice", "--passphrase-file", str(secret))
    run("keys", "new", "bob", "--passphrase-file", str(secret))
    run("chain", "init", "--chain-id", "p", "--alloc", "alice=5")
    run("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1", "--passphrase-file", str(secret))
    monkeypatch.setenv("AILEDGER_PASSPHRASE", "from a file")
    run("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1")
    monkeypatch.setenv("AILEDGER_PASSPHRASE", "wrong")
    fails("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1", code="wrong_passphrase")
    fails("keys", "new", "carol", "--passphrase-file", str(tmp_path / "missing"), code="file_unreadable")


def test_corrupt_keystore_file(chain: Path, home: Path) -> None:
    path = home / "keys" / "alice.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "ciphertext": "00" + doc["ciphertext"][2:]}))
    fails("keys", "show", "alice", code="keystore_corrupt")
    fails("tx", "stake", "--from", "alice", "--amount", "1", code="keystore_corrupt")
    path.write_text("{ not json")
    fails("keys", "show", "alice", code="keystore_corrupt")
    listed = as_json("keys", "list")
    assert listed[0] == {"name": "alice", "address": None, "error": "keystore_corrupt"}


def test_embedded_transfers_stake_proofs_and_verify(chain: Path, tmp_path: Path) -> None:
    alice = as_json("keys", "show", "alice")["address"]
    t = as_json("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1.5")
    assert t["status"] == "included" and t["receipt"]["ok"] and t["height"] == 1
    assert as_json("account", "show", "bob")["balance"] == 11_500_000
    run("tx", "stake", "--from", "alice", "--amount", "100")
    run("tx", "unstake", "--from", "alice", "--amount", "40", "--fee", "0.002")
    acct = as_json("account", "show", "alice", "--proof")
    assert (acct["stake"], acct["unbonding"], acct["nonce"]) == (60_000_000, 40_000_000, 3)
    assert acct["balance"] == 1000_000_000 - 1_500_000 - 100_000_000 - 1000 - 1000 - 2000
    assert acct["proof_verified"]["height"] == 3
    assert "verified locally" in run("account", "show", alice, "--proof").stdout

    proof_file = tmp_path / "alice.json"
    proof_file.write_text(json.dumps(acct))
    root = as_json("block", "show", "3")["header"]["state_root"]
    checked = as_json("proof", "verify", str(proof_file), "--root", root)
    assert checked["ok"] and checked["trusted_root"] and checked["proven"]["balance"] == acct["balance"]
    assert not as_json("proof", "verify", str(proof_file))["trusted_root"]
    fails("proof", "verify", str(proof_file), "--root", "11" * 32, code="bad_proof")
    fails("proof", "verify", str(proof_file), "--root", "xyz", code="bad_hex")
    acct["proof"]["account"]["balance"] += 1
    proof_file.write_text(json.dumps(acct))
    fails("proof", "verify", str(proof_file), code="bad_proof")

    shown = as_json("tx", "show", t["id"], "--proof")
    assert shown["receipt_proof_verified"] and shown["receipt"]["ok"]
    receipt_file = tmp_path / "receipt.json"
    receipt_file.write_text(json.dumps(shown))
    assert as_json("proof", "verify", str(receipt_file))["kind"] == "receipt"

    for _ in range(2):  # unbonding_blocks=2: the stake returns at height 3 + 2
        run("tx", "transfer", "--from", "bob", "--to", "alice", "--amount", "0.000001")
    assert as_json("account", "show", "alice")["unbonding"] == 0
    block = as_json("block", "show", "latest")
    assert block["header"]["height"] == 5 and block["txs"][0]["type_name"] == "transfer"
    assert "transfer" in run("block", "show").stdout
    assert as_json("params")["unbonding_blocks"]["value"] == 2
    assert as_json("status")["height"] == 5
    report = as_json("chain", "verify")
    assert report["ok"] and report["head_height"] == 5 and report["txs"] == 5


def _corrupt_header(data: Path, height: int, truncate: bool) -> None:
    from ailedger.chain.store import Store
    from tests.pg_server import execute_sql

    store = Store.open(data)
    header = bytearray(store.header(height).encode())
    store.close()
    if truncate:
        header = header[:-5]
    else:
        header[-1] ^= 0x01  # one bit of the state root
    execute_sql(data, f"UPDATE blocks SET header=x'{bytes(header).hex()}' WHERE height={height}")


@pytest.mark.parametrize("truncate", [False, True], ids=["flipped-bit", "truncated-row"])
def test_chain_verify_names_the_first_bad_block(chain: Path, truncate: bool) -> None:
    for amount in ("1", "2", "3"):
        run("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", amount)
    run("chain", "verify")
    _corrupt_header(chain, 2, truncate)
    r = fails("chain", "verify", code="truncated_encoding" if truncate else "bad_block")
    assert "first bad block at height 2" in r.stderr
    doc = json.loads(run("--json", "chain", "verify", exit=1).stdout)
    assert doc["report"]["first_bad_height"] == 2 and not doc["report"]["ok"]
    assert doc["error"]["code"] == ("truncated_encoding" if truncate else "bad_block")


@pytest.mark.parametrize(("args", "code", "exit"), [
    (["tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1.0000001"], "integer_out_of_range", 1),
    (["tx", "transfer", "--from", "alice", "--to", "al1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "--amount", "1"],
     "bad_address", 1),
    (["tx", "transfer", "--from", "alice", "--to", "nobody", "--amount", "1"], "key_not_found", 1),
    (["tx", "transfer", "--from", "nobody", "--to", "bob", "--amount", "1"], "key_not_found", 1),
    (["tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "0"], "zero_amount", 1),
    (["tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "5000"], "insufficient_balance", 1),
    (["tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1", "--fee", "0.000001"], "fee_too_low", 1),
    (["tx", "transfer", "--from", "alice", "--to", "alice", "--amount", "1"], "self_transfer", 1),
    (["tx", "unstake", "--from", "alice", "--amount", "1"], "insufficient_stake", 1),
    (["tx", "show", "zz"], "bad_hex", 1),
    (["tx", "show", "00" * 32], "not_found", 1),
    (["block", "show", "99"], "not_found", 1),
    (["block", "show", "tip"], "bad_argument", 2),
    (["chain", "init", "--chain-id", "again"], "already_initialised", 1),
    (["account", "show", "bob", "--node", "http://127.0.0.1:1", "--data-dir", "x"], "bad_argument", 2),
    (["status", "--node", "http://127.0.0.1:1"], "node_unreachable", 1),
    (["bench", "no_such_bench"], "unknown_bench", 1),
    (["proof", "verify", "/nonexistent/proof.json"], "file_unreadable", 1),
])
def test_bad_input_gets_its_code(chain: Path, args: list[str], code: str, exit: int) -> None:
    before = as_json("status")
    fails(*args, code=code, exit=exit)
    after = as_json("status")
    assert (after["height"], after["state_root"], after["pending"]) == (before["height"], before["state_root"], 0)


@pytest.mark.parametrize(("args", "code", "exit"), [
    (["chain", "init", "--chain-id", "x", "--alloc", "alice"], "bad_argument", 2),
    (["chain", "init", "--chain-id", "x", "--alloc", "alice=1.2.3"], "integer_out_of_range", 1),
    (["chain", "init", "--chain-id", "x", "--param", "no_such=1"], "bad_parameter", 1),
    (["chain", "init", "--chain-id", "x", "--param", "unbonding_blocks=0"], "bad_parameter", 1),
    (["chain", "init", "--chain-id", "x" * 40], "bad_genesis", 1),
    (["chain", "init"], "bad_argument", 2),
    (["status"], "no_chain", 1),
    (["chain", "verify"], "no_chain", 1),
])
def test_bad_init_and_missing_chain(home: Path, args: list[str], code: str, exit: int) -> None:
    run("keys", "new", "alice")
    fails(*args, code=code, exit=exit)
    assert not (home / "data" / "chain.sqlite").exists()


def test_usage_errors_exit_2(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("tx", "transfer", "--from", "alice", exit=2).exit_code == 2  # click: missing --to/--amount
    monkeypatch.setenv("AILEDGER_KDF_COST", "bogus")
    fails("keys", "new", "alice", code="bad_argument", exit=2)


def test_json_errors_are_one_document(chain: Path) -> None:
    r = run("--json", "tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "5000", exit=1)
    doc = json.loads(r.stdout)
    assert doc["error"]["code"] == "insufficient_balance" and doc["error"]["number"] == 204
    assert r.stderr.startswith("error[insufficient_balance]: ")


def test_genesis_file_and_missing_proposer_key(home: Path, tmp_path: Path) -> None:
    run("keys", "new", "alice")
    run("keys", "new", "bob")
    alice = as_json("keys", "show", "alice")["address"]
    gen = tmp_path / "genesis.json"
    gen.write_text(json.dumps({"allocations": [{"address": alice, "balance": 7_000_000}],
                               "params": {"min_fee": 10}}))
    data = tmp_path / "chain"
    out = as_json("chain", "init", "--data-dir", str(data), "--genesis", str(gen), "--chain-id", "from-file",
                  "--alloc", "bob=2")
    assert out["genesis"]["chain_id"] == "from-file" and out["proposer_address"]
    assert len(out["genesis"]["allocations"]) == 2 and out["genesis"]["params"]["min_fee"] == 10
    assert (data / "node_key.json").stat().st_mode & 0o777 == 0o600
    t = as_json("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1", "--data-dir", str(data))
    assert t["fee"] == 10
    (data / "node_key.json").unlink()
    fails("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1", "--data-dir", str(data),
          code="no_proposer_key")
    assert as_json("status", "--data-dir", str(data))["pending"] == 0
    bob = as_json("keys", "show", "bob")["address"]
    own = as_json("chain", "init", "--data-dir", str(tmp_path / "own"), "--chain-id", "own", "--node-key", "bob")
    assert own["proposer_address"] == bob


def test_commands_against_a_running_node(chain: Path, home: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writerlock, "WRITER_WAIT_S", 0.2)
    with running_node(home, chain, tmp_path / "node.log", 0.1) as url:
        t = as_json("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "2", "--node", url)
        assert t["status"] == "included" and t["receipt"]["ok"]
        acct = as_json("account", "show", "bob", "--proof", "--node", url)
        assert acct["balance"] == 12_000_000 and acct["proof_verified"]["height"] == t["height"]
        assert as_json("tx", "show", t["id"], "--proof", "--node", url)["receipt_proof_verified"]
        fails("tx", "transfer", "--from", "bob", "--to", "alice", "--amount", "50", "--node", url,
              code="insufficient_balance")
        assert as_json("status", "--node", url)["height"] == 1
        # the node holds the writer lock: an embedded write would fork the chain behind its back
        fails("tx", "stake", "--from", "alice", "--amount", "1", code="data_dir_busy")
        assert as_json("status")["height"] == 1  # reads of a served directory still work
    assert as_json("chain", "verify")["ok"]


def _process(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env={**os.environ, **env},
                          timeout=timeout, check=False)


def test_real_process_errors_and_bench(tmp_path: Path) -> None:
    env = {"AILEDGER_HOME": str(tmp_path / "h"), "AILEDGER_PASSPHRASE": "pw", "AILEDGER_KDF_COST": "test"}
    assert _process(["keys", "new", "alice"], env).returncode == 0
    p = _process(["keys", "new", "alice"], env)
    assert p.returncode == 1 and p.stderr.startswith("error[key_exists]: ") and "Traceback" not in p.stderr
    p = _process(["tx", "stake", "--from", "alice", "--amount", "1"], env)
    assert p.returncode == 1 and p.stderr.startswith("error[no_chain]: ")
    p = _process(["bench", "ledger", "--quick"], env)
    assert p.returncode == 0, p.stderr
    figures = json.loads(p.stdout.strip().splitlines()[-1])
    assert figures["name"] == "ledger"


def test_ledger_demo_runs_to_completion(tmp_path: Path) -> None:
    env = {"AILEDGER_KDF_COST": "test"}
    p = _process(["--json", "demo", "--ledger", "--dir", str(tmp_path / "demo")], env, timeout=90)
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout)
    assert summary["verified"] and summary["refused"] == "insufficient_balance"
    assert summary["seconds"] < 60 and summary["stakes"]["alice"] == 60_000_000
    assert "error[wrong_passphrase]" in p.stderr and "error[bad_proof]" in p.stderr
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("keep me")
    p = _process(["demo", "--ledger", "--dir", str(tmp_path / "other")], env)
    assert p.returncode == 2 and "error[bad_argument]" in p.stderr
    assert (tmp_path / "other" / "precious.txt").exists()
