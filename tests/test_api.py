"""The HTTP API end to end, over a real uvicorn server on loopback: reads, writes, proofs, every error.

Each bad input is sent through HTTP and must come back with its own code, its code's HTTP status
and the common error body, and must leave the ledger exactly as it was.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ailedger.api.app import MAX_BODY_BYTES
from ailedger.api.client import HttpClient
from ailedger.chain.accounts import TRANSFER, TRANSFER_CODEC, Transfer
from ailedger.chain.genesis import Allocation, Genesis
from ailedger.chain.node import Node
from ailedger.chain.nodekey import load_node_key, node_key_path, write_node_key
from ailedger.chain.proofs import verify_account_proof, verify_receipt_proof
from ailedger.chain.replay import verify_chain
from ailedger.chain.store import DB_NAME, Store
from ailedger.chain.tx import MAX_TX_BYTES, SIGN_TAG, decode_tx, sign_tx
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.core.merkle import merkle_root
from ailedger.modules import default_runtime
from tests.conftest import CHAIN_ID, key
from tests.conftest_api import NodeProcess, make_chain, producing, serve_in_thread, transfer

START_BALANCE = 1_000_000_000
FEE = 1000


@pytest.fixture
def api(node: Node) -> Iterator[str]:
    """The conftest node, producing blocks every 50 ms, behind a real server; yields the base URL."""
    with producing(node, 0.05) as url:
        yield url


@pytest.fixture
def client(api: str) -> Iterator[HttpClient]:
    with HttpClient(api, timeout=10) as c:
        yield c


def error_of(r: httpx.Response) -> dict[str, Any]:
    """The error object of an answer, after checking it has exactly the common shape."""
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"code", "number", "message", "detail"}
    code = errors.by_name(err["code"])
    assert (err["number"], err["message"]) == (code.number, code.message)
    assert "Traceback" not in r.text
    return dict(err)


# -- happy paths -------------------------------------------------------------------------------------

def test_health_status_params(client: HttpClient, node: Node, api: str) -> None:
    assert httpx.get(f"{api}/healthz").json() == {"ok": True}
    assert client.status() == node.status()
    assert client.status()["chain_id"] == CHAIN_ID
    assert client.params() == node.params()
    assert client.params()["min_fee"]["value"] == FEE


def test_transfers_blocks_receipts_and_proofs(client: HttpClient, node: Node, api: str, users: list[KeyPair],
                                              proposer: KeyPair) -> None:
    a, b, c = users[:3]
    sent = [transfer(a, 0, b.address, 100), transfer(a, 1, c.address, 200)]
    ids = [client.submit(raw)["tx_id"] for raw in sent]
    batch = [transfer(b, 0, c.address, 5), transfer(b, 1, a.address, 7)]
    results = client.submit_many(batch)
    assert [r["status"] for r in results] == ["pending", "pending"]
    ids += [r["tx_id"] for r in results]
    raw_c = transfer(c, 0, a.address, 9)
    r = httpx.post(f"{api}/v1/txs", json={"tx": raw_c.hex()})
    assert r.status_code == 202 and r.json()["status"] == "pending"
    ids.append(r.json()["tx_id"])
    sent += [*batch, raw_c]
    assert ids == [decode_tx(raw).id.hex() for raw in sent]

    for tx_id, raw in zip(ids, sent, strict=True):
        view = client.wait_for_tx(tx_id, timeout_s=10)
        assert view["status"] == "included" and view["raw"] == raw.hex() and view["receipt"]["ok"]
        proven = client.tx(tx_id, proof=True)
        assert proven == node.tx(tx_id, proof=True)
        assert httpx.get(f"{api}/v1/txs/{tx_id}", params={"proof": "true"}).json() == proven
        block = client.block(proven["height"])
        header = block["header"]
        receipt = verify_receipt_proof(proven["receipt_proof"], bytes.fromhex(header["receipts_root"]))
        assert receipt.ok and receipt.tx_id.hex() == tx_id and receipt.fee == FEE
        assert block["txs"][proven["position"]]["id"] == tx_id
        assert merkle_root([bytes.fromhex(t["raw"]) for t in block["txs"]]).hex() == header["tx_root"]

    expected = {a: START_BALANCE - 300 - 2 * FEE + 7 + 9, b: START_BALANCE + 100 - 12 - 2 * FEE,
                c: START_BALANCE + 200 + 5 - 9 - FEE, proposer: 5 * FEE}
    for k, balance in expected.items():
        acct = client.account(k.address_text, proof=True)
        assert acct["balance"] == balance
        trusted = bytes.fromhex(client.block(acct["height"])["header"]["state_root"])
        assert verify_account_proof(acct["proof"], trusted).balance == balance
        forged = {**acct["proof"], "account": {**acct["proof"]["account"], "balance": balance + 1}}
        with pytest.raises(LedgerError, match="bad_proof"):
            verify_account_proof(forged, trusted)
    assert client.account(a.address_text)["nonce"] == 2

    latest = client.block("latest")
    assert latest["header"]["height"] == client.status()["height"]
    assert httpx.get(f"{api}/v1/blocks/latest").json() == latest
    assert client.block(0)["header"]["height"] == 0


def test_batch_answers_each_item(client: HttpClient, users: list[KeyPair]) -> None:
    a, b = users[:2]
    bad_sig = bytearray(transfer(a, 1, b.address, 2))
    bad_sig[-1] ^= 1
    results = client.submit_many([transfer(a, 0, b.address, 1), bytes(bad_sig), transfer(a, 1, b.address, 3),
                                  transfer(a, 9, b.address, 4), b"\x01"])
    assert [r.get("status") or r["error"]["code"] for r in results] == [
        "pending", "bad_signature", "pending", "nonce_gap", "truncated_encoding"]
    for r in (results[0], results[2]):
        assert client.wait_for_tx(r["tx_id"], timeout_s=10)["receipt"]["ok"]
    assert client.submit_many([]) == []
    assert client.account(a.address_text)["nonce"] == 2


def test_pending_then_wait_timeout(node: Node, users: list[KeyPair]) -> None:
    """Without the producer running, a transaction stays pending and waiting for it times out."""
    a, b = users[:2]
    with serve_in_thread(node) as url, HttpClient(url) as c:
        tx_id = c.submit(transfer(a, 0, b.address, 1))["tx_id"]
        view = c.tx(tx_id)
        assert view["status"] == "pending" and "height" not in view
        assert c.account(a.address_text)["pending_nonce"] == 1
        with pytest.raises(LedgerError) as info:
            c.wait_for_tx(tx_id, timeout_s=0.2)
        assert info.value.code is errors.WAIT_TIMEOUT
        assert c.status()["pending"] == 1


def test_unexpected_fault_is_a_bare_500(api: str, node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(node, "params", broken)
    r = httpx.get(f"{api}/v1/params")
    assert r.status_code == 500
    assert error_of(r)["code"] == "internal_error"
    assert "secret internals" not in r.text
    with HttpClient(api) as c, pytest.raises(LedgerError) as info:
        c.params()
    assert info.value.code is errors.INTERNAL
    assert httpx.get(f"{api}/healthz").status_code == 200  # the server carries on


def test_unreachable_node() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with HttpClient(f"http://127.0.0.1:{port}", timeout=2) as c, pytest.raises(LedgerError) as info:
        c.status()
    assert info.value.code is errors.NODE_UNREACHABLE and str(port) in info.value.detail


# -- bad input: each case its own code and status, and the ledger unchanged -----------------------

@dataclass
class Env:
    node: Node
    url: str
    a: KeyPair
    b: KeyPair
    included: bytes
    http: httpx.Client
    client: HttpClient


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Env]:
    """One server for all bad-input cases, on each store; A has one transaction included (nonce 1 is next)."""
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_server").fresh_url()
    runtime = default_runtime()
    proposer, a, b = key(1000), key(1), key(2)
    genesis = Genesis(CHAIN_ID, 1_700_000_000_000, proposer.public_key,
                      [Allocation(a.address, START_BALANCE), Allocation(b.address, START_BALANCE)], {})
    data = tmp_path_factory.mktemp("bad") / "chain"
    Store.create(data, genesis, runtime, url).close()
    node = Node(data, runtime, proposer, block_interval_s=0.05)
    node.start()
    try:
        with serve_in_thread(node) as url, HttpClient(url) as c, httpx.Client(base_url=url) as http:
            first = transfer(a, 0, b.address, 1)
            c.wait_for_tx(c.submit(first)["tx_id"], timeout_s=10)
            yield Env(node, url, a, b, first, http, c)
    finally:
        node.close()


def by_hand(k: KeyPair, nonce: int, fee: int, payload: bytes) -> bytes:
    """A signed transfer laid out byte by byte, for field values the codec refuses to encode."""
    body = (bytes([1]) + struct.pack(">I", len(CHAIN_ID)) + CHAIN_ID.encode() + k.public_key
            + struct.pack(">QQH", nonce, fee, TRANSFER) + struct.pack(">I", len(payload)) + payload)
    return body + k.sign(SIGN_TAG + body)


def _flip_last(raw: bytes) -> bytes:
    return raw[:-1] + bytes([raw[-1] ^ 1])


def _over_balance(e: Env, c: HttpClient) -> bytes:
    balance = c.account(e.a.address_text)["balance"]
    return transfer(e.a, 1, e.b.address, balance - FEE + 1)


TX_CASES: dict[str, tuple[Callable[[Env, HttpClient], bytes], str]] = {
    "bad signature": (lambda e, c: _flip_last(transfer(e.a, 1, e.b.address, 1)), "bad_signature"),
    "wrong chain id": (lambda e, c: transfer(e.a, 1, e.b.address, 1, chain="other-chain"), "wrong_chain_id"),
    "replayed nonce": (lambda e, c: transfer(e.a, 0, e.b.address, 2), "nonce_replayed"),
    "nonce gap": (lambda e, c: transfer(e.a, 5, e.b.address, 1), "nonce_gap"),
    "amount + fee over balance": (_over_balance, "insufficient_balance"),
    "amount beyond 2^63-1": (lambda e, c: by_hand(e.a, 1, FEE, e.b.address + struct.pack(">Q", 2**63)),
                             "integer_out_of_range"),
    "fee beyond 2^63-1": (lambda e, c: by_hand(e.a, 1, 2**63, TRANSFER_CODEC.encode(Transfer(e.b.address, 1))),
                          "integer_out_of_range"),
    "fee below min_fee": (lambda e, c: transfer(e.a, 1, e.b.address, 1, fee=FEE - 1), "fee_too_low"),
    "unknown type": (lambda e, c: sign_tx(e.a, CHAIN_ID, 1, FEE, 0x7777, b""), "unknown_tx_type"),
    "zero amount": (lambda e, c: transfer(e.a, 1, e.b.address, 0), "zero_amount"),
    "truncated": (lambda e, c: transfer(e.a, 1, e.b.address, 1)[:-3], "truncated_encoding"),
    "trailing bytes": (lambda e, c: transfer(e.a, 1, e.b.address, 1) + b"\x00", "trailing_bytes"),
    "oversized": (lambda e, c: transfer(e.a, 1, e.b.address, 1) + bytes(MAX_TX_BYTES), "oversized_encoding"),
    "already included": (lambda e, c: e.included, "duplicate_transaction"),
}


def snapshot(e: Env, c: HttpClient) -> tuple[Any, ...]:
    s = c.status()
    return (s["height"], s["head_hash"], s["state_root"], s["pending"], e.node.store.mempool(),
            c.account(e.a.address_text), c.account(e.b.address_text))


def test_by_hand_layout_matches_the_codec(env: Env) -> None:
    payload = TRANSFER_CODEC.encode(Transfer(env.b.address, 1))
    assert by_hand(env.a, 1, FEE, payload) == transfer(env.a, 1, env.b.address, 1)


@pytest.mark.parametrize("case", list(TX_CASES))
def test_bad_transaction(env: Env, case: str) -> None:
    build, expected = TX_CASES[case]
    c = env.client
    raw = build(env, c)
    before = snapshot(env, c)
    r = env.http.post("/v1/txs", json={"tx": raw.hex()})
    err = error_of(r)
    assert err["code"] == expected, err
    assert r.status_code == errors.by_name(expected).http_status
    with pytest.raises(LedgerError) as info:
        c.submit(raw)
    assert info.value.code is errors.by_name(expected)
    assert snapshot(env, c) == before


_BAD_ADDRESS = "al1" + "q" * 38
_UNFUNDED = key(777).address_text

# (method, path, json body or raw bytes, expected code, expected status)
HTTP_CASES: dict[str, tuple[str, str, Any, str | None, int]] = {
    "non-hex tx": ("POST", "/v1/txs", {"tx": "zz"}, "bad_hex", 400),
    "odd-length hex": ("POST", "/v1/txs", {"tx": "abc"}, "bad_hex", 400),
    "hex with spaces": ("POST", "/v1/txs", {"tx": "01 02"}, "bad_hex", 400),
    "non-hex batch item": ("POST", "/v1/txs", {"txs": ["0x00"]}, None, 200),
    "body over 1 MiB": ("POST", "/v1/txs", {"tx": "00" * (MAX_BODY_BYTES // 2 + 1)}, "oversized_encoding", 413),
    "not json": ("POST", "/v1/txs", b"{not json", "bad_request", 400),
    "neither tx nor txs": ("POST", "/v1/txs", {}, "bad_request", 400),
    "both tx and txs": ("POST", "/v1/txs", {"tx": "00", "txs": []}, "bad_request", 400),
    "tx not a string": ("POST", "/v1/txs", {"tx": 5}, "bad_request", 400),
    "unknown field": ("POST", "/v1/txs", {"tx": "00", "fee": 1}, "bad_request", 400),
    "unknown block height": ("GET", "/v1/blocks/999999", None, "not_found", 404),
    "height beyond u63": ("GET", f"/v1/blocks/{2**64}", None, "bad_request", 400),
    "negative height": ("GET", "/v1/blocks/-1", None, "bad_request", 400),
    "height not a number": ("GET", "/v1/blocks/tip", None, "bad_request", 400),
    "bad address": ("GET", f"/v1/accounts/{_BAD_ADDRESS}", None, "bad_address", 400),
    "address with a typo": ("GET", f"/v1/accounts/{key(2).address_text[:-1]}x", None, "bad_address", 400),
    "proof of an unfunded account": ("GET", f"/v1/accounts/{_UNFUNDED}?proof=true", None, "not_found", 404),
    "proof flag not boolean": ("GET", f"/v1/accounts/{_UNFUNDED}?proof=maybe", None, "bad_request", 400),
    "unknown tx id": ("GET", "/v1/txs/" + "ab" * 32, None, "not_found", 404),
    "malformed tx id": ("GET", "/v1/txs/xyz", None, "bad_hex", 400),
    "unknown route": ("GET", "/v1/nothing", None, "not_found", 404),
    "wrong method": ("DELETE", "/v1/txs", None, "bad_request", 405),
}


@pytest.mark.parametrize("case", list(HTTP_CASES))
def test_bad_request(env: Env, case: str) -> None:
    method, path, body, expected, status = HTTP_CASES[case]
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    c = env.client
    before = snapshot(env, c)
    r = env.http.request(method, path, **({} if body is None else kwargs))
    assert r.status_code == status, r.text
    if expected is None:  # a batch answers 200 with one error per item
        assert r.json()["results"][0]["error"]["code"] == "bad_hex"
    else:
        assert error_of(r)["code"] == expected
    assert snapshot(env, c) == before


def test_client_raises_the_servers_error(env: Env) -> None:
    c = env.client
    calls: list[tuple[Callable[[], Any], errors.ErrorCode]] = [
        (lambda: c.block(10**9), errors.NOT_FOUND),
        (lambda: c.block("tip"), errors.BAD_REQUEST),
        (lambda: c.account(_BAD_ADDRESS), errors.BAD_ADDRESS),
        (lambda: c.account(_UNFUNDED, proof=True), errors.NOT_FOUND),
        (lambda: c.tx("zz"), errors.BAD_HEX),
    ]
    for call, code in calls:
        with pytest.raises(LedgerError) as info:
            call()
        assert info.value.code is code
    assert c.account(_UNFUNDED) == env.node.account(_UNFUNDED)


def test_body_limit_without_content_length(env: Env) -> None:
    """A chunked upload declares no length; it is counted as it arrives and refused past 1 MiB."""
    half = b"x" * (MAX_BODY_BYTES // 2 + 1)
    r = env.http.post("/v1/txs", content=iter([half, half]), headers={"content-type": "application/json"})
    assert r.status_code == 413 and error_of(r)["code"] == "oversized_encoding"
    small = json.dumps({"tx": "zz"}).encode()
    r = env.http.post("/v1/txs", content=iter([small[:4], small[4:]]), headers={"content-type": "application/json"})
    assert r.status_code == 400 and error_of(r)["code"] == "bad_hex"


# -- the server process and its key ---------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_server_process_stops_cleanly(tmp_path: Path, genesis: Genesis, proposer: KeyPair, users: list[KeyPair],
                                      sig: int) -> None:
    runtime = default_runtime()
    data = make_chain(tmp_path / "chain", genesis, runtime, proposer)
    proc = NodeProcess(data, block_interval_s=0.05, log=tmp_path / "node.log")
    try:
        url = proc.wait_listening()
        with HttpClient(url) as c:
            assert c.status()["producing"] is True
            tx_id = c.submit(transfer(users[0], 0, users[1].address, 42))["tx_id"]
            assert c.wait_for_tx(tx_id, timeout_s=10)["status"] == "included"
            proc.signal(sig)
            assert proc.wait_exit() == 0, (tmp_path / "node.log").read_text()
            with pytest.raises(LedgerError) as info:
                c.status()
            assert info.value.code is errors.NODE_UNREACHABLE
    finally:
        proc.kill()
    assert not (data / (DB_NAME + "-wal")).exists()  # the store was closed, not abandoned
    store = Store.open(data)
    try:
        assert verify_chain(store, runtime).ok and store.find_tx(bytes.fromhex(tx_id)) is not None
    finally:
        store.close()


def test_in_thread_server_stops(node: Node) -> None:
    with serve_in_thread(node) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
    with HttpClient(url, timeout=2) as c, pytest.raises(LedgerError) as info:
        c.status()
    assert info.value.code is errors.NODE_UNREACHABLE


def test_node_key_file(tmp_path: Path) -> None:
    assert load_node_key(tmp_path) is None
    k = key(42)
    path = write_node_key(tmp_path, k)
    assert path == node_key_path(tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = load_node_key(tmp_path)
    assert loaded is not None and loaded.public_key == k.public_key
    with pytest.raises(LedgerError, match="key_exists"):
        write_node_key(tmp_path, key(43))
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "public_key": key(43).public_key.hex()}))
    with pytest.raises(LedgerError, match="keystore_corrupt"):
        load_node_key(tmp_path)
    path.write_text("{not json")
    with pytest.raises(LedgerError, match="keystore_corrupt"):
        load_node_key(tmp_path)
