"""The embedded node end to end: admission errors, blocks, unbonding, proofs, replay, reopen."""

from __future__ import annotations

import pytest

from ailedger.chain.accounts import AMOUNT_CODEC, STAKE, TRANSFER, TRANSFER_CODEC, UNSTAKE, Amount, Transfer
from ailedger.chain.node import Node
from ailedger.chain.proofs import verify_account_proof, verify_receipt_proof
from ailedger.chain.replay import verify_chain
from ailedger.chain.tx import sign_tx
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from tests.conftest import CHAIN_ID


def transfer(k: KeyPair, nonce: int, to: bytes, amount: int, fee: int = 1000, chain: str = CHAIN_ID) -> bytes:
    return sign_tx(k, chain, nonce, fee, TRANSFER, TRANSFER_CODEC.encode(Transfer(to, amount)))


def refused(node: Node, raw: bytes) -> str:
    root = node.state.root()
    with pytest.raises(LedgerError) as info:
        node.submit(raw)
    assert node.state.root() == root
    return info.value.code.name


def test_admission_errors_leave_state_untouched(node: Node, users: list[KeyPair]) -> None:
    a, b = users[0], users[1]
    assert refused(node, transfer(a, 0, b.address, 10**12)) == "insufficient_balance"
    assert refused(node, transfer(a, 1, b.address, 1)) == "nonce_gap"
    assert refused(node, transfer(a, 0, b.address, 1, chain="other")) == "wrong_chain_id"
    assert refused(node, transfer(a, 0, b.address, 1, fee=1)) == "fee_too_low"
    bad_sig = bytearray(transfer(a, 0, b.address, 1))
    bad_sig[-1] ^= 1
    assert refused(node, bytes(bad_sig)) == "bad_signature"
    assert refused(node, transfer(a, 0, b.address, 1)[:-3]) == "truncated_encoding"
    assert refused(node, transfer(a, 0, b.address, 1) + b"x") == "trailing_bytes"
    assert refused(node, sign_tx(a, CHAIN_ID, 0, 1000, 0x7777, b"")) == "unknown_tx_type"
    node.submit(transfer(a, 0, b.address, 1))
    assert refused(node, transfer(a, 0, b.address, 1)) == "duplicate_transaction"
    assert refused(node, transfer(a, 0, b.address, 2)) == "nonce_replayed"
    assert node.produce_block() is not None
    assert node.account(a.address_text)["nonce"] == 1


def test_transfers_stake_unbond_and_proofs(node: Node, users: list[KeyPair], proposer: KeyPair) -> None:
    a, b = users[0], users[1]
    node.submit(transfer(a, 0, b.address, 5_000))
    node.submit(sign_tx(a, CHAIN_ID, 1, 1000, STAKE, AMOUNT_CODEC.encode(Amount(100_000))))
    node.produce_block()
    node.submit(sign_tx(a, CHAIN_ID, 2, 1000, UNSTAKE, AMOUNT_CODEC.encode(Amount(40_000))))
    node.produce_block()
    acct = node.account(a.address_text)
    assert (acct["stake"], acct["unbonding"]) == (60_000, 40_000)
    for i in range(3):
        node.submit(transfer(a, 3 + i, b.address, 1))
        node.produce_block()
    acct = node.account(a.address_text, proof=True)
    assert acct["unbonding"] == 0
    assert acct["balance"] == 1_000_000_000 - 5_000 - 100_000 + 40_000 - 3 - 6 * 1000
    assert node.account(proposer.address_text)["balance"] == 6 * 1000
    root = bytes.fromhex(node.status()["state_root"])
    assert verify_account_proof(acct["proof"], root).balance == acct["balance"]
    forged = {**acct["proof"], "account": {**acct["proof"]["account"], "balance": acct["balance"] + 1}}
    with pytest.raises(LedgerError, match="bad_proof"):
        verify_account_proof(forged, root)
    tx_id = node.block(1)["txs"][0]["id"]
    t = node.tx(tx_id, proof=True)
    assert verify_receipt_proof(t["receipt_proof"]).ok
    report = verify_chain(node.store, node.runtime)
    assert report.ok and report.head_height == 5 and report.txs == 6


def test_reopen_restores_state_and_mempool(node: Node, users: list[KeyPair]) -> None:
    a, b = users[0], users[1]
    node.submit(transfer(a, 0, b.address, 7))
    node.produce_block()
    node.submit(transfer(a, 1, b.address, 8))
    root, directory, runtime, key = node.state.root(), node.store.dir, node.runtime, node.key
    node.close()
    again = Node(directory, runtime, key)
    try:
        assert again.state.root() == root
        assert len(again.mempool) == 1
        again.produce_block()
        assert again.account(b.address_text)["balance"] == 1_000_000_000 + 15
    finally:
        again.close()


def _chain_of_three(node: Node, users: list[KeyPair]) -> None:
    for i in range(3):
        node.submit(transfer(users[0], i, users[1].address, 1 + i))
        node.produce_block()


@pytest.mark.parametrize(("sql", "height", "code"), [
    ("UPDATE blocks SET header = substr(header, 1, 20) WHERE height = 0", 0, "truncated_encoding"),
    ("UPDATE blocks SET header = substr(header, 1, 20) WHERE height = 3", 3, "truncated_encoding"),
    ("UPDATE txs SET raw = substr(raw, 1, length(raw) - 1) || x'00' WHERE height = 2", 2, "root_mismatch"),
    ("DELETE FROM blocks WHERE height = 2", 2, "not_found"),
    ("UPDATE state SET value = x'00' WHERE idx = (SELECT MAX(idx) FROM state)", 3, "store_corrupt"),
    ("DELETE FROM state WHERE idx = 0", 3, "store_corrupt"),
])
def test_verify_names_the_first_bad_block(node: Node, users: list[KeyPair], sql: str, height: int,
                                          code: str) -> None:
    from tests.pg_server import execute_sql

    _chain_of_three(node, users)
    directory, runtime = node.store.dir, node.runtime
    node.close()
    execute_sql(directory, sql)
    from ailedger.chain.store import Store

    store = Store.open(directory)
    try:
        report = verify_chain(store, runtime)
    finally:
        store.close()
    assert not report.ok
    assert (report.first_bad_height, report.error) == (height, code)
