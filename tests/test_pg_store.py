"""The PostgreSQL store for real: same roots as SQLite, migration proven by roots, several API processes
over one database, and a database server that goes away mid-block.

Every test runs against a real PostgreSQL 15 server started by the session fixture (tests/pg_server.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from ailedger.api.client import HttpClient
from ailedger.api.workers import PID_HEADER
from ailedger.chain.genesis import Genesis
from ailedger.chain.node import Node
from ailedger.chain.replay import verify_chain
from ailedger.chain.runtime import Runtime
from ailedger.chain.store import DB_NAME, Store, store_url
from ailedger.chain.tx import decode_tx
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.modules import default_runtime
from tests.conftest_api import NodeProcess, make_chain, transfer
from tests.pg_server import PgServer, execute_sql
from tests.test_cli import as_json, fails, home, run  # noqa: F401 - `home` is a fixture

T0 = 1_700_000_001_000


def _fill(node: Node, users: list[KeyPair], blocks: int, per_block: int) -> list[tuple[str, str]]:
    """Transfers in `blocks` blocks at fixed timestamps; returns each block's (hash, state root)."""
    heads = []
    nonces = [0] * len(users)
    for b in range(blocks):
        for j in range(per_block):
            i = (b + j) % len(users)
            node.submit(transfer(users[i], nonces[i], users[(i + 1) % len(users)].address, 1 + j))
            nonces[i] += 1
        block = node.produce_block(T0 + 1000 * b)
        assert block is not None
        heads.append((block.header.hash.hex(), block.header.state_root.hex()))
    return heads


def assert_included_once(data: Path, acked: list[str]) -> None:
    """The chain replays, and holds each acknowledged transaction exactly once, nothing else, none pending."""
    store = Store.open(data)
    try:
        assert verify_chain(store, default_runtime()).ok
        included = [decode_tx(raw).id.hex() for b in store.blocks() for raw in b.txs]
        assert Counter(included) == Counter(acked)
        assert store.mempool() == []
    finally:
        store.close()


def test_same_blocks_same_roots_on_both_stores(tmp_path: Path, genesis: Genesis, runtime: Runtime,
                                               proposer: KeyPair, users: list[KeyPair], pg_server: PgServer) -> None:
    roots = []
    for name, url in (("lite", None), ("pg", pg_server.fresh_url())):
        Store.create(tmp_path / name, genesis, runtime, url).close()
        node = Node(tmp_path / name, runtime, proposer)
        try:
            roots.append(_fill(node, users, blocks=6, per_block=25))
            assert node.store.kind == ("sqlite" if url is None else "postgresql")
        finally:
            node.close()
    assert roots[0] == roots[1]  # every block hash and state root, bit for bit
    assert (tmp_path / "pg" / "store.json").exists() and not (tmp_path / "pg" / DB_NAME).exists()


def test_migrate_proves_the_copy_and_switches(tmp_path: Path, home: Path, pg_server: PgServer) -> None:  # noqa: F811
    run("keys", "new", "alice")
    run("keys", "new", "bob")
    run("chain", "init", "--chain-id", "mig", "--alloc", "alice=1000", "--alloc", "bob=10")
    for amount in ("1", "2", "3"):
        run("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", amount)
    before = as_json("status")
    data = home / "data"
    url = pg_server.fresh_url()
    fails("store", "migrate", "--to", "mysql://x", code="bad_store_url")
    report = as_json("store", "migrate", "--to", url, "--switch")
    assert report["blocks"] == 3 and report["txs"] == 3 and report["switched"]
    assert report["state_root"] == before["state_root"] and report["head_hash"] == before["head_hash"]
    assert store_url(data) == url and (data / (DB_NAME + ".migrated")).exists()
    assert as_json("store", "show")["kind"] == "postgresql"
    run("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "4")  # the chain goes on in PostgreSQL
    assert as_json("chain", "verify")["head_height"] == 4
    fails("store", "migrate", "--to", url, code="already_initialised")  # never over a chain

    back = tmp_path / "back"  # and back into a fresh SQLite data directory
    report = as_json("store", "migrate", "--to", f"sqlite:{back}")
    assert report["blocks"] == 4
    store = Store.open(back)
    try:
        assert store.kind == "sqlite" and verify_chain(store, default_runtime()).ok
        assert store.head().hash.hex() == as_json("status")["head_hash"]
    finally:
        store.close()


def test_migrate_refuses_a_copy_that_does_not_match(tmp_path: Path, genesis: Genesis, runtime: Runtime,
                                                     proposer: KeyPair, users: list[KeyPair],
                                                     pg_server: PgServer) -> None:
    from ailedger.chain.migrate import migrate, prove_equal

    Store.create(tmp_path / "src", genesis, runtime).close()
    node = Node(tmp_path / "src", runtime, proposer)
    _fill(node, users, blocks=3, per_block=4)
    node.close()
    src = Store.open(tmp_path / "src")
    url = pg_server.fresh_url()
    dst = Store.create_at(url, tmp_path / "src", src.genesis, runtime)
    try:
        migrate(src, dst)
        with dst._db.cursor() as cur:  # type: ignore[attr-defined]  # damage one receipt in the target
            cur.execute("UPDATE txs SET receipt = receipt || '\\x00'::bytea WHERE height = 2 AND pos = 1")
        with pytest.raises(LedgerError) as info:
            prove_equal(src, dst)
        assert info.value.code is errors.MIGRATE_MISMATCH and "block 2" in info.value.detail
    finally:
        dst.close()
        src.close()


def test_workers_share_one_database_without_loss_or_duplicates(tmp_path: Path, genesis: Genesis,
                                                               proposer: KeyPair, users: list[KeyPair],
                                                               pg_server: PgServer) -> None:
    """Three API processes on one port; five clients each send 60 transfers in nonce order, one request at a
    time, so consecutive nonces of one sender land on different processes."""
    data = make_chain(tmp_path / "chain", genesis, default_runtime(), proposer, pg_server.fresh_url())
    proc = NodeProcess(data, 0.05, tmp_path / "node.log", extra=("--workers", "3"))
    per_user = 60
    acked: list[str] = []
    pids: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        me, to = users[i], users[(i + 1) % len(users)]
        with httpx.Client(base_url=url, timeout=20) as http:
            for n in range(per_user):
                raw = transfer(me, n, to.address, 1 + n)
                # a new connection each time, so the kernel may hand it to any worker process
                r = http.post("/v1/txs", json={"tx": raw.hex()}, headers={"connection": "close"})
                with lock:
                    pids[r.headers.get(PID_HEADER, "?")] += 1
                    if r.status_code != 202:
                        failures.append(f"{i}/{n}: {r.status_code} {r.text}")
                        return
                    acked.append(r.json()["tx_id"])

    try:
        url = proc.wait_listening(timeout_s=40)
        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(users))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not failures, failures[:5]
        assert len(acked) == len(set(acked)) == per_user * len(users)
        assert len(pids) >= 2, pids  # more than one process answered
        with HttpClient(url, timeout=20) as c:
            deadline = time.monotonic() + 60
            while c.status()["pending"] and time.monotonic() < deadline:
                time.sleep(0.1)
            for u in users:
                assert c.account(u.address_text)["nonce"] == per_user
    finally:
        proc.kill()
    assert_included_once(data, acked)


def test_workers_need_a_server_store(tmp_path: Path, genesis: Genesis, proposer: KeyPair) -> None:
    data = make_chain(tmp_path / "chain", genesis, default_runtime(), proposer)
    proc = NodeProcess(data, 0.05, tmp_path / "node.log", extra=("--workers", "2"))
    try:
        assert proc.wait_exit() == 1
    finally:
        proc.kill()
    assert "bad_argument" in (tmp_path / "node.log").read_text()


def test_database_going_away_mid_block_loses_nothing(tmp_path: Path, genesis: Genesis, runtime: Runtime,
                                                     proposer: KeyPair, users: list[KeyPair]) -> None:
    """A server of its own, stopped (immediate mode: like a crash) while blocks are being written, then started
    again: the node reports store_unavailable meanwhile, then carries on from exactly what was committed."""
    server = PgServer()
    try:
        Store.create(tmp_path / "chain", genesis, runtime, server.fresh_url()).close()
        node = Node(tmp_path / "chain", runtime, proposer)
        acked = []
        nonce = 0
        for _ in range(5):
            for _ in range(20):
                acked.append(node.submit(transfer(users[0], nonce, users[1].address, 1))["tx_id"])
                nonce += 1
            node.produce_block()
        for _ in range(20):  # pending, persisted, then the server dies under the next block
            acked.append(node.submit(transfer(users[0], nonce, users[1].address, 1))["tx_id"])
            nonce += 1
        stopper = threading.Thread(target=server.stop, args=("immediate",))
        stopper.start()
        outcomes = []
        for _ in range(3):
            try:
                outcomes.append(node.produce_block() is not None)
            except LedgerError as exc:
                outcomes.append(exc.code.name)
        stopper.join()
        with pytest.raises(LedgerError) as info:
            node.produce_block()
        assert info.value.code is errors.STORE_UNAVAILABLE and "host=" not in info.value.code.message
        with pytest.raises(LedgerError) as info:
            node.submit(transfer(users[0], nonce, users[1].address, 1))
        assert info.value.code is errors.STORE_UNAVAILABLE
        server.start()
        deadline = time.monotonic() + 20
        while node.mempool and time.monotonic() < deadline:
            try:
                node.produce_block()
            except LedgerError:
                time.sleep(0.2)
        node.close()
        store = Store.open(tmp_path / "chain")
        try:
            assert verify_chain(store, runtime).ok
            included = {decode_tx(raw).id.hex() for b in store.blocks() for raw in b.txs}
            assert included == set(acked), outcomes
        finally:
            store.close()
    finally:
        server.close()


def test_init_on_an_unreachable_or_used_database(tmp_path: Path, home: Path, pg_server: PgServer) -> None:  # noqa: F811
    dead = "postgresql:///nobody?host=/nonexistent-dir&user=ailedger"
    fails("chain", "init", "--chain-id", "x", "--store", dead, code="store_unavailable")
    assert not (home / "data" / "store.json").exists()
    url = pg_server.fresh_url()
    run("chain", "init", "--chain-id", "x", "--store", url)
    fails("chain", "init", "--chain-id", "x", "--store", url, "--data-dir", str(tmp_path / "other"),
          code="already_initialised")
    doc = json.loads((home / "data" / "store.json").read_text())
    assert doc == {"store": url}
    execute_sql(home / "data", "DROP TABLE meta")
    fails("status", code="no_chain")


def test_a_killed_worker_hands_block_production_over(tmp_path: Path, genesis: Genesis, proposer: KeyPair,
                                                     users: list[KeyPair], pg_server: PgServer) -> None:
    """SIGKILL each worker process in turn (one of them is the producer): blocks keep coming, nothing is lost."""
    import os
    import signal

    data = make_chain(tmp_path / "chain", genesis, default_runtime(), proposer, pg_server.fresh_url())
    proc = NodeProcess(data, 0.05, tmp_path / "node.log", extra=("--workers", "2"))
    nonce = 0
    acked = []

    def send_some(http: httpx.Client, n: int) -> set[str]:
        nonlocal nonce
        seen = set()
        for _ in range(n):
            r = http.post("/v1/txs", json={"tx": transfer(users[0], nonce, users[1].address, 1).hex()},
                          headers={"connection": "close"})
            assert r.status_code == 202, r.text
            acked.append(r.json()["tx_id"])
            seen.add(r.headers[PID_HEADER])
            nonce += 1
        return seen

    try:
        url = proc.wait_listening(timeout_s=40)
        with httpx.Client(base_url=url, timeout=20) as http, HttpClient(url, timeout=20) as c:
            pids = send_some(http, 20)
            for _ in range(20):  # new connections until both processes have answered
                if len(pids) >= 2:
                    break
                pids |= send_some(http, 5)
            assert len(pids) == 2, pids
            for pid in sorted(pids):
                os.kill(int(pid), signal.SIGKILL)
                time.sleep(0.5)
                deadline = time.monotonic() + 30
                while True:  # the survivor (or the replacement) answers and seals what is pending
                    try:
                        send_some(http, 3)
                        break
                    except (httpx.HTTPError, AssertionError):
                        assert time.monotonic() < deadline, "no process answered after a worker was killed"
                        time.sleep(0.2)
                assert c.wait_for_tx(acked[-1], timeout_s=30)["status"] == "included"
    finally:
        proc.kill()
    assert_included_once(data, acked)


def test_a_second_data_directory_attaches_to_the_same_chain(tmp_path: Path, home: Path,  # noqa: F811
                                                            genesis: Genesis, proposer: KeyPair, users: list[KeyPair],
                                                            pg_server: PgServer) -> None:
    """API processes on two machines: each its own data directory (keys, blobs), one chain in PostgreSQL. The
    second has no proposer key: it admits and serves, the first seals."""
    from ailedger.chain.store import attach

    url = pg_server.fresh_url()
    first = make_chain(tmp_path / "a", genesis, default_runtime(), proposer, url)
    lone = make_chain(tmp_path / "lone", genesis, default_runtime(), proposer)
    fails("node", "run", "--data-dir", str(lone), "--store", url, code="already_initialised")
    fails("node", "run", "--data-dir", str(tmp_path / "b"), "--store", pg_server.fresh_url(), code="no_chain")
    attach(tmp_path / "b", url)
    attach(tmp_path / "b", url)  # again: nothing changes
    procs = [NodeProcess(first, 0.05, tmp_path / "a.log"), NodeProcess(tmp_path / "b", 0.05, tmp_path / "b.log")]
    try:
        url_a, url_b = (p.wait_listening() for p in procs)
        with HttpClient(url_a) as a, HttpClient(url_b) as b:
            assert not b.status()["producing"]
            tx_id = b.submit(transfer(users[0], 0, users[1].address, 7))["tx_id"]
            assert b.wait_for_tx(tx_id, timeout_s=20)["status"] == "included"
            assert a.status()["head_hash"] == b.status()["head_hash"]
            assert b.account(users[1].address_text)["balance"] == a.account(users[1].address_text)["balance"]
    finally:
        for p in procs:
            p.kill()
