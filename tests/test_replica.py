"""Read replicas end to end over real HTTP on loopback: following, resuming, outages, reads and writes.

The primary is a real `Node` producing blocks behind a real uvicorn server; the replica is a real
`ReplicaNode` in its own data directory, following over HTTP and served by its own uvicorn server.
Refusals (a lying primary, another chain) are in test_replica_refusals.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
import uvicorn

from ailedger.api.client import HttpClient
from ailedger.api.server import make_config, make_server, run_server_in_thread
from ailedger.chain.follower import FOLLOWING, WAITING
from ailedger.chain.node import Node
from ailedger.chain.proofs import verify_account_proof, verify_receipt_proof
from ailedger.chain.replica import ReplicaNode, open_replica
from ailedger.chain.replication import HEIGHT_HEADER, PrimaryClient, decode_feed
from ailedger.chain.runtime import Runtime
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from tests.conftest_api import REPO, producing, serve_in_thread, transfer


def wait_until(cond: Callable[[], bool], timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout_s} s")
        time.sleep(0.02)


class Traffic:
    """Signed transfers between the test users, each sender's nonces counted here."""

    def __init__(self, users: list[KeyPair]) -> None:
        self.users = users
        self.nonces = {u.address: 0 for u in users}
        self.sent = 0

    def next(self) -> bytes:
        a = self.users[self.sent % len(self.users)]
        b = self.users[(self.sent + 1) % len(self.users)]
        raw = transfer(a, self.nonces[a.address], b.address, 1 + self.sent)
        self.nonces[a.address] += 1
        self.sent += 1
        return raw

    def send(self, node: Node, n: int) -> None:
        for _ in range(n):
            node.submit(self.next())


def blocks_of(node: Node, traffic: Traffic, blocks: int, per_block: int = 3) -> None:
    """Make `blocks` more blocks on a primary that is not running its producer thread."""
    for _ in range(blocks):
        traffic.send(node, per_block)
        assert node.produce_block() is not None


def same_chain(a: Node, b: Node) -> bool:
    with a.lock, b.lock:
        ha, hb = a.store.head(), b.store.head()
        return ha.hash == hb.hash and a.state.root() == b.state.root() == ha.state_root


def serve_on(node: Node, port: int) -> AbstractContextManager[str]:
    """`node` behind uvicorn on a given loopback port, so a test can stop it and bring it back there."""
    return run_server_in_thread(make_server(node), port=port)


@pytest.fixture
def store_url() -> None:
    """The primary on SQLite only: a replica reads it over HTTP, so its store changes nothing here (the node,
    API and crash tests cover PostgreSQL)."""
    return None


@pytest.fixture
def traffic(users: list[KeyPair]) -> Traffic:
    return Traffic(users)


@pytest.fixture
def primary(node: Node) -> Iterator[str]:
    """The conftest node as a primary producing a block every 30 ms, served on loopback."""
    with producing(node, 0.03) as url:
        yield url


@pytest.fixture
def replica(tmp_path: Path, primary: str, runtime: Runtime) -> Iterator[ReplicaNode]:
    r = open_replica(tmp_path / "replica", primary, runtime, poll_s=0.02, max_backoff_s=0.2)
    r.start()
    yield r
    r.close()


@pytest.fixture
def replica_url(replica: ReplicaNode) -> Iterator[str]:
    with serve_in_thread(replica) as url:
        yield url


# -- following -------------------------------------------------------------------------------------

def test_replica_follows_a_producing_primary_to_the_same_height_and_root(
        node: Node, replica: ReplicaNode, traffic: Traffic) -> None:
    assert replica.store.dir != node.store.dir and not replica.can_produce
    for _ in range(6):
        traffic.send(node, 20)
        time.sleep(0.05)
    wait_until(lambda: len(node.mempool) == 0, what="primary drained")
    wait_until(lambda: same_chain(node, replica), what="replica at the primary's head")
    assert node.store.height() >= 3
    assert dict(replica.state.items()) == dict(node.state.items())
    for h in range(node.store.height() + 1):
        assert replica.store.block(h) == node.store.block(h)
        assert replica.store.receipts(h) == node.store.receipts(h)
    status = replica.status()
    assert status["replica"]["state"] == FOLLOWING and status["replica"]["error"] is None
    assert status["producing"] is False and status["height"] == node.store.height()
    assert status["replica"]["verified_txs"] == traffic.sent == 120


def test_restarted_replica_resumes_from_its_own_head(tmp_path: Path, node: Node, primary: str, runtime: Runtime,
                                                     traffic: Traffic) -> None:
    node.stop()  # blocks made by hand, so each height is known
    blocks_of(node, traffic, 3)
    first = open_replica(tmp_path / "r", primary, runtime, poll_s=0.02)
    assert first.follower.catch_up() == 3
    first.close()
    blocks_of(node, traffic, 4)
    again = open_replica(tmp_path / "r", primary, runtime, poll_s=0.02)
    try:
        assert again.store.height() == 3  # the same store, not a fresh one from genesis
        again.start()
        wait_until(lambda: same_chain(node, again), what="resumed replica caught up")
        assert again.follower.verified_blocks == 4  # blocks 1-3 were not fetched or verified again
    finally:
        again.close()


def test_primary_down_then_back_replica_waits_serves_and_catches_up(
        tmp_path: Path, node: Node, runtime: Runtime, traffic: Traffic) -> None:
    node.block_interval_s = 0.03
    node.start()
    with serve_on(node, 0) as url:
        port = int(url.rsplit(":", 1)[1])
        replica = open_replica(tmp_path / "r", url, runtime, poll_s=0.02, max_backoff_s=0.2)
        replica.start()
        traffic.send(node, 10)
        wait_until(lambda: len(node.mempool) == 0 and same_chain(node, replica), what="first catch-up")
    try:
        with serve_in_thread(replica) as replica_url, HttpClient(replica_url) as client:
            traffic.send(node, 10)  # the primary goes on producing while nobody can reach it
            wait_until(lambda: replica.follower.phase == WAITING, what="replica notices the outage")
            error = client.status()["replica"]["error"]
            assert error["code"] == errors.REPLICA_PRIMARY_UNREACHABLE.name and url in error["detail"]
            seen = replica.store.height()
            assert client.status()["height"] == seen and client.block(seen)["header"]["height"] == seen
            with pytest.raises(LedgerError) as refused:  # a write cannot be forwarded: said, with the URL
                client.submit(traffic.next())
            assert refused.value.code is errors.REPLICA_PRIMARY_UNREACHABLE and url in refused.value.detail
            wait_until(lambda: len(node.mempool) == 0, what="primary drained")
            assert node.store.height() > seen
            with serve_on(node, port):
                wait_until(lambda: same_chain(node, replica), what="catch-up after the outage")
                assert client.status()["replica"]["state"] == FOLLOWING
                assert client.status()["replica"]["error"] is None
    finally:
        replica.close()
        node.stop()


def test_a_replica_can_follow_a_replica(tmp_path: Path, node: Node, replica: ReplicaNode, replica_url: str,
                                       runtime: Runtime, traffic: Traffic) -> None:
    second = open_replica(tmp_path / "second", replica_url, runtime, poll_s=0.02)
    try:
        second.start()
        answer = second.submit(traffic.next())  # forwarded twice, to the primary
        wait_until(lambda: node.store.find_tx(bytes.fromhex(answer["tx_id"])) is not None, what="inclusion")
        wait_until(lambda: same_chain(node, replica) and same_chain(node, second), what="both replicas caught up")
    finally:
        second.close()


# -- what a replica serves -----------------------------------------------------------------------

def test_replica_read_api_answers_with_proofs_of_what_it_verified(
        node: Node, primary: str, replica: ReplicaNode, replica_url: str, traffic: Traffic,
        users: list[KeyPair]) -> None:
    raw = traffic.next()
    tx_id = node.submit(raw)["tx_id"]
    wait_until(lambda: node.store.find_tx(bytes.fromhex(tx_id)) is not None, what="inclusion on the primary")
    wait_until(lambda: same_chain(node, replica), what="replica caught up")
    with HttpClient(replica_url) as client:
        status = client.status()
        assert (status["chain_id"], status["height"], status["state_root"]) == (
            node.chain_id, node.store.height(), node.store.head().state_root.hex())
        assert status["genesis"] == node.store.genesis.to_json()

        acct = client.account(users[0].address_text, proof=True)
        proven = verify_account_proof(acct["proof"], bytes.fromhex(status["state_root"]))
        assert proven.balance == acct["balance"] == node.account(users[0].address_text)["balance"]

        view = client.tx(tx_id, proof=True)
        assert view == node.tx(tx_id, proof=True)
        header = client.block(view["height"])["header"]
        receipt = verify_receipt_proof(view["receipt_proof"], bytes.fromhex(header["receipts_root"]))
        assert receipt.ok and receipt.tx_id.hex() == tx_id
        assert client.block(view["height"]) == node.block(view["height"])
        with pytest.raises(LedgerError) as missing:
            client.tx("00" * 32)
        assert missing.value.code is errors.NOT_FOUND


def test_a_write_to_a_replica_is_forwarded_to_the_primary(
        node: Node, primary: str, replica: ReplicaNode, replica_url: str, traffic: Traffic) -> None:
    raw = traffic.next()
    with HttpClient(replica_url) as client:
        answer = client.submit(raw)
        assert answer["status"] == "pending" and answer["forwarded_to"] == primary
        assert node.tx(answer["tx_id"])["status"] in ("pending", "included")  # the primary holds it
        view = client.wait_for_tx(answer["tx_id"], timeout_s=20)  # "pending" on the replica until verified
        assert view["status"] == "included" and view["raw"] == raw.hex()
        with pytest.raises(LedgerError) as dup:  # the primary's own refusal comes back unchanged
            client.submit(raw)
        assert dup.value.code is errors.DUPLICATE_TX
        r = httpx.post(f"{replica_url}/v1/txs", json={"tx": raw[:-1].hex()})
        assert r.status_code == 400 and r.json()["error"]["code"] == errors.TRUNCATED.name
        blob = b"a record only the replica was sent"
        (h,) = client.put_blobs([blob])
        assert node.get_blob(h) == blob and client.get_blob(h) == blob


def test_a_tx_the_primary_knows_but_this_replica_has_not_verified_is_pending(
        tmp_path: Path, node: Node, primary: str, runtime: Runtime, traffic: Traffic) -> None:
    node.stop()  # blocks only when the test says
    replica = open_replica(tmp_path / "r", primary, runtime)  # not started: it follows only when asked
    try:
        tx_id = replica.submit(traffic.next())["tx_id"]
        assert replica.tx(tx_id)["status"] == "pending"  # in the primary's mempool
        assert node.produce_block() is not None
        view = replica.tx(tx_id)  # included there, not verified here: no receipt is vouched for yet
        assert view["status"] == "pending" and "receipt" not in view and "height" not in view
        assert replica.follower.catch_up() == 1
        assert replica.tx(tx_id, proof=True)["status"] == "included"
    finally:
        replica.close()


def test_blob_missing_on_the_replica_is_fetched_from_the_primary_and_checked(
        node: Node, replica: ReplicaNode) -> None:
    (h,) = node.put_blobs([b"written on the primary only"])
    assert replica.get_blob(h) == b"written on the primary only"
    with pytest.raises(LedgerError) as missing:
        replica.get_blob("11" * 32)
    assert missing.value.code is errors.BLOB_NOT_FOUND


def test_explorer_on_a_replica_sees_blocks_as_they_arrive(
        node: Node, replica: ReplicaNode, traffic: Traffic) -> None:
    from ailedger.web.app import add_explorer

    server = uvicorn.Server(make_config(replica, extend=add_explorer))
    with run_server_in_thread(server) as url:
        start = replica.store.height()
        raw = traffic.next()
        tx_id = node.submit(raw)["tx_id"]
        wait_until(lambda: replica.store.find_tx(bytes.fromhex(tx_id)) is not None, what="tx on the replica")
        height = replica.store.find_tx(bytes.fromhex(tx_id))[0]  # type: ignore[index]
        assert height > start
        page = httpx.get(f"{url}/blocks/{height}")
        assert page.status_code == 200 and tx_id[:12] in page.text
        assert httpx.get(f"{url}/txs/{tx_id}").status_code == 200
        assert "history stopped" not in httpx.get(f"{url}/").text.lower()


# -- the block feed ------------------------------------------------------------------------------

def test_block_feed_serves_canonical_blocks_with_the_head_height(
        node: Node, primary: str, traffic: Traffic) -> None:
    node.stop()
    blocks_of(node, traffic, 3)
    r = httpx.get(f"{primary}/v1/chain/blocks", params={"from": 0, "limit": 10})
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert int(r.headers[HEIGHT_HEADER]) == 3
    assert decode_feed(r.content) == [node.store.block(h) for h in range(4)]
    client = PrimaryClient(primary)
    try:
        assert client.blocks(2, 1) == ([node.store.block(2)], 3)
        assert client.blocks(4, 5) == ([], 3)
    finally:
        client.close()
    for bad in ({"from": -1}, {"from": 0, "limit": 0}, {"from": 0, "limit": 100_000}, {"limit": 3}):
        r = httpx.get(f"{primary}/v1/chain/blocks", params=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == errors.BAD_REQUEST.name


# -- the command line ----------------------------------------------------------------------------

def test_node_run_follow_serves_a_replica_until_sigterm(tmp_path: Path, node: Node, primary: str,
                                                        traffic: Traffic) -> None:
    traffic.send(node, 5)
    wait_until(lambda: len(node.mempool) == 0, what="primary drained")
    target = node.store.height()
    proc = subprocess.Popen([sys.executable, "-m", "ailedger.cli.main", "node", "run", "--data-dir",
                             str(tmp_path / "cli-replica"), "--port", "0", "--follow", primary,
                             "--block-interval", "0.05"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("listening on http://"), line
        url = line.strip().removeprefix("listening on ")
        with HttpClient(url) as client:
            wait_until(lambda: client.status()["height"] >= target, what="CLI replica caught up")
            status = client.status()
            assert status["replica"]["primary"] == primary and status["producing"] is False
            assert client.block(target) == node.block(target)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
