"""What a replica refuses: a primary that serves a block whose roots disagree, another chain, another genesis.

The lying primary is a real HTTP server on loopback (`http.server`) in front of a real primary: it
passes every answer through, except that it rewrites one block of the block feed. Each lie must be
refused with its coded error naming the height and what disagreed, leave the replica's store and
state exactly as they were after the last good block, and leave the replica serving that.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from ailedger.api.client import HttpClient
from ailedger.chain.accounts import TRANSFER_CODEC
from ailedger.chain.block import Block
from ailedger.chain.follower import REFUSED, apply_blocks
from ailedger.chain.genesis import Genesis
from ailedger.chain.node import Node
from ailedger.chain.replica import open_replica
from ailedger.chain.replication import FEED_PATH, HEIGHT_HEADER, decode_feed, encode_feed
from ailedger.chain.runtime import Runtime
from ailedger.chain.store import Store
from ailedger.chain.tx import decode_tx
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.core.merkle import merkle_root
from tests.conftest import CHAIN_ID
from tests.conftest_api import REPO, serve_in_thread, transfer
from tests.test_replica import Traffic, blocks_of, same_chain, serve_on, wait_until

Lie = Callable[[Block], Block]


@contextmanager
def lying_primary(upstream: str, at: int, lie: Lie, mangle: Callable[[bytes], bytes] | None = None) -> Iterator[str]:
    """A proxy to `upstream` that serves `lie(block)` instead of the block at height `at` (and, with
    `mangle`, sends the feed's bytes through it); yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _relay(self, resp: httpx.Response, body: bytes) -> None:
            self.send_response(resp.status_code)
            self.send_header("content-type", resp.headers.get("content-type", "application/json"))
            if HEIGHT_HEADER in resp.headers:
                self.send_header(HEIGHT_HEADER, resp.headers[HEIGHT_HEADER])
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # the http.server hook's name
            resp = httpx.get(upstream + self.path)
            body = resp.content
            if self.path.startswith(FEED_PATH) and resp.status_code == 200:
                blocks = decode_feed(body)
                body = encode_feed([lie(b) if b.header.height == at else b for b in blocks])
                if mangle is not None and any(b.header.height == at for b in blocks):
                    body = mangle(body)
            self._relay(resp, body)

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("content-length", 0)))
            resp = httpx.post(upstream + self.path, content=data, headers={"content-type": "application/json"})
            self._relay(resp, resp.content)

        def log_message(self, format: str, *args: object) -> None:  # quiet in tests
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# -- the lies --------------------------------------------------------------------------------------

def altered_first_tx(block: Block, users: list[KeyPair]) -> list[bytes]:
    """The block's transactions with the first one re-signed by its real sender for one more unit."""
    tx = decode_tx(block.txs[0])
    sender = next(u for u in users if u.public_key == tx.sender)
    t = TRANSFER_CODEC.decode(tx.payload)
    forged = transfer(sender, tx.nonce, t.to, t.amount + 1, tx.fee)
    return [forged, *block.txs[1:]]


def resigned(block: Block, proposer: KeyPair, txs: list[bytes] | None = None, state_root: bytes | None = None,
             tx_root: bytes | None = None) -> Block:
    """The block with header roots replaced and signed again by the real proposer's key."""
    h = dataclasses.replace(block.header, state_root=state_root or block.header.state_root,
                            tx_root=tx_root or block.header.tx_root)
    return Block(h, h.sign(proposer), block.txs if txs is None else txs)


def lies(users: list[KeyPair], proposer: KeyPair) -> dict[str, tuple[Lie, str]]:
    """Name -> (how the block is rewritten, the words the refusal must contain)."""
    def altered_tx(b: Block) -> Block:
        return Block(b.header, b.signature, altered_first_tx(b, users))

    def resigned_wrong_state_root(b: Block) -> Block:
        return resigned(b, proposer, state_root=bytes(32))

    def resigned_altered_tx(b: Block) -> Block:
        txs = altered_first_tx(b, users)
        return resigned(b, proposer, txs, tx_root=merkle_root(txs))

    def forged_header(b: Block) -> Block:
        return Block(dataclasses.replace(b.header, state_root=bytes(32)), b.signature, b.txs)

    return {"altered_tx": (altered_tx, "transactions root"),
            "resigned_wrong_state_root": (resigned_wrong_state_root, "state root"),
            "resigned_altered_tx": (resigned_altered_tx, "receipts root"),
            "forged_header": (forged_header, "proposer signature is invalid")}


@pytest.mark.parametrize("name", ["altered_tx", "resigned_wrong_state_root", "resigned_altered_tx", "forged_header"])
def test_a_lying_primary_is_refused_and_the_replica_keeps_serving_what_it_verified(
        name: str, tmp_path: Path, node: Node, runtime: Runtime, users: list[KeyPair], proposer: KeyPair) -> None:
    traffic = Traffic(users)
    blocks_of(node, traffic, 3)
    lie, disagreed = lies(users, proposer)[name]
    lied_ids = [decode_tx(raw).id for raw in node.store.block(2).txs]
    with serve_in_thread(node) as primary, lying_primary(primary, 2, lie) as liar:
        replica = open_replica(tmp_path / "r", liar, runtime, poll_s=0.02)
        try:
            with serve_in_thread(replica) as replica_url, HttpClient(replica_url) as client:
                replica.start()
                wait_until(lambda: replica.follower.phase == REFUSED, what="refusal")
                err = replica.follower.error
                assert err is not None and err.code is errors.REPLICA_PRIMARY_DIVERGED
                assert err.detail.startswith("block 2: ") and disagreed in err.detail
                # nothing of the lie was kept: the store and state are those of block 1
                assert replica.store.height() == 1
                assert replica.state.root() == node.store.header(1).state_root == replica.store.head().state_root
                assert replica.store.load_state().root() == replica.state.root()
                assert all(replica.store.find_tx(i) is None for i in lied_ids)
                # it still serves what it verified, and says why it stopped
                status = client.status()
                assert status["height"] == 1 and status["replica"]["state"] == REFUSED
                assert status["replica"]["error"]["code"] == errors.REPLICA_PRIMARY_DIVERGED.name
                assert "block 2" in status["replica"]["error"]["detail"]
                assert client.block(1) == node.block(1)
                assert client.account(users[0].address_text)["height"] == 1
                blocks_of(node, traffic, 1)  # and it follows no further
                time.sleep(0.2)
                assert replica.store.height() == 1 and not replica.follower.running
        finally:
            replica.close()


@pytest.fixture
def store_url() -> None:
    """The primary on SQLite only: a replica reads it over HTTP, so its store changes nothing here (the node,
    API and crash tests cover PostgreSQL)."""
    return None


def test_bytes_no_node_would_send_are_refused_as_a_bad_answer(tmp_path: Path, node: Node, runtime: Runtime,
                                                              users: list[KeyPair]) -> None:
    blocks_of(node, Traffic(users), 2)
    with serve_in_thread(node) as primary, \
            lying_primary(primary, 2, lambda b: b, mangle=lambda body: body[:-3]) as liar:
        replica = open_replica(tmp_path / "r", liar, runtime, poll_s=0.02)
        try:
            replica.start()
            wait_until(lambda: replica.follower.phase == REFUSED, what="refusal")
            assert replica.follower.error is not None
            assert replica.follower.error.code is errors.REPLICA_BAD_ANSWER
            assert "truncated_encoding" in replica.follower.error.detail
            assert replica.store.height() == 0  # the answer held blocks 1 and 2: neither is kept
        finally:
            replica.close()


def test_apply_blocks_commits_good_blocks_and_stops_at_the_first_bad_one(
        tmp_path: Path, node: Node, runtime: Runtime, genesis: Genesis, users: list[KeyPair],
        proposer: KeyPair) -> None:
    blocks_of(node, Traffic(users), 4)
    good = [node.store.block(h) for h in range(1, 5)]
    target = Node(Store.create(tmp_path / "v", genesis, runtime), runtime)
    try:
        bad = resigned(good[2], proposer, state_root=bytes(32))
        with pytest.raises(LedgerError) as refused:
            apply_blocks(target, [good[0], good[1], bad, good[3]])
        assert refused.value.code is errors.REPLICA_PRIMARY_DIVERGED
        assert refused.value.detail.startswith("block 3: root_mismatch") and "state root" in refused.value.detail
        assert target.store.height() == 2 and target.state.root() == good[1].header.state_root
        done = apply_blocks(target, good[2:])
        assert (done.blocks, done.txs) == (2, sum(len(b.txs) for b in good[2:]))
        assert same_chain(node, target)
    finally:
        target.close()


# -- another chain ---------------------------------------------------------------------------------

def _other_node(tmp_path: Path, genesis: Genesis, runtime: Runtime, proposer: KeyPair, name: str, **change: object
                ) -> Node:
    other = dataclasses.replace(genesis, **change)  # type: ignore[arg-type]
    return Node(Store.create(tmp_path / name, other, runtime), runtime, proposer)


def test_a_primary_of_another_chain_id_or_genesis_is_refused(tmp_path: Path, node: Node, runtime: Runtime,
                                                             genesis: Genesis, proposer: KeyPair) -> None:
    with serve_in_thread(node) as primary:
        replica = open_replica(tmp_path / "r", primary, runtime)
        replica.close()
    other_chain = _other_node(tmp_path, genesis, runtime, proposer, "other", chain_id="another-chain")
    other_genesis = _other_node(tmp_path, genesis, runtime, proposer, "fork", timestamp_ms=genesis.timestamp_ms + 1)
    try:
        with serve_in_thread(other_chain) as url:
            with pytest.raises(LedgerError) as wrong:
                open_replica(tmp_path / "r", url, runtime)
            assert wrong.value.code is errors.REPLICA_WRONG_CHAIN
            assert "'another-chain'" in wrong.value.detail and repr(CHAIN_ID) in wrong.value.detail
            run = subprocess.run([sys.executable, "-m", "ailedger.api", "--data-dir", str(tmp_path / "r"),
                                  "--port", "0", "--follow", url], cwd=REPO, capture_output=True, timeout=60)
            assert run.returncode == 1 and b"error: replica_wrong_chain" in run.stderr
            assert b"listening" not in run.stdout
        with serve_in_thread(other_genesis) as url:
            with pytest.raises(LedgerError) as differs:
                open_replica(tmp_path / "r", url, runtime)
            assert differs.value.code is errors.REPLICA_GENESIS_MISMATCH
    finally:
        other_chain.close()
        other_genesis.close()
    kept = Store.open(tmp_path / "r")
    assert kept.height() == 0  # the replica's directory is as it was
    kept.close()


def test_another_chain_appearing_at_the_url_of_a_down_primary_is_refused_by_the_follower(
        tmp_path: Path, node: Node, runtime: Runtime, genesis: Genesis, proposer: KeyPair) -> None:
    with serve_in_thread(node) as primary:
        open_replica(tmp_path / "r", primary, runtime).close()
    with socket.socket() as s:  # a loopback port with nobody on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    replica = open_replica(tmp_path / "r", f"http://127.0.0.1:{port}", runtime, poll_s=0.02, max_backoff_s=0.1)
    other = _other_node(tmp_path, genesis, runtime, proposer, "other", chain_id="another-chain")
    try:
        replica.start()  # an existing replica serves while its primary is away
        wait_until(lambda: replica.follower.error is not None, what="outage noticed")
        assert replica.follower.error is not None
        assert replica.follower.error.code is errors.REPLICA_PRIMARY_UNREACHABLE
        with serve_on(other, port):
            wait_until(lambda: replica.follower.phase == REFUSED, what="refusal")
        assert replica.follower.error.code is errors.REPLICA_WRONG_CHAIN
        assert replica.store.height() == 0
    finally:
        replica.close()
        other.close()


def test_a_fresh_replica_refuses_a_primary_whose_block_zero_is_not_its_genesis(
        tmp_path: Path, node: Node, runtime: Runtime, proposer: KeyPair) -> None:
    with serve_in_thread(node) as primary, \
            lying_primary(primary, 0, lambda b: resigned(b, proposer, state_root=bytes(32))) as liar, \
            pytest.raises(LedgerError) as refused:
        open_replica(tmp_path / "fresh", liar, runtime)
    assert refused.value.code is errors.REPLICA_GENESIS_MISMATCH
    with pytest.raises(LedgerError) as none:  # no half-made replica was left behind
        Store.open(tmp_path / "fresh")
    assert none.value.code is errors.NO_CHAIN


def test_a_primary_whose_block_at_the_replicas_head_differs_is_refused(
        tmp_path: Path, node: Node, runtime: Runtime, genesis: Genesis, users: list[KeyPair],
        proposer: KeyPair) -> None:
    blocks_of(node, Traffic(users), 2)
    with serve_in_thread(node) as primary:
        first = open_replica(tmp_path / "r", primary, runtime)
        assert first.follower.catch_up() == 2
        first.close()
    fork = Node(Store.create(tmp_path / "fork", genesis, runtime), runtime, proposer)  # same genesis, other blocks
    try:
        blocks_of(fork, Traffic(list(reversed(users))), 3)
        with serve_in_thread(fork) as url, pytest.raises(LedgerError) as refused:
            open_replica(tmp_path / "r", url, runtime)
        assert refused.value.code is errors.REPLICA_PRIMARY_DIVERGED
        assert refused.value.detail.startswith("block 2: the primary's block differs")
    finally:
        fork.close()
    kept = Store.open(tmp_path / "r")
    assert kept.head().hash == node.store.header(2).hash  # the replica's directory is as it was
    kept.close()
