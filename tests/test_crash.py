"""Crash safety, for real: a node process is SIGKILLed at random moments while it takes transactions.

Each life of the node runs `python -m ailedger.api` on the same data directory with a short block
interval; a thread submits transfers over HTTP and records every acknowledged id; the test kills
the process (sometimes while it is still starting up, sometimes mid-request or mid-block), then,
with the node down, opens the store and checks:

(a) `verify_chain` replays every committed block from genesis and the stored state equals the
    replay, so no block was half written;
(b) every acknowledged transaction is in a block or in the persisted mempool (never both), and
    nothing we did not send appears in either;
(c) the head height never goes down.

At the end the node runs once more until every acknowledged transaction is included.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ailedger.api.client import HttpClient
from ailedger.chain.genesis import Genesis
from ailedger.chain.replay import verify_chain
from ailedger.chain.runtime import Runtime
from ailedger.chain.store import Store
from ailedger.chain.tx import decode_tx
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.modules import default_runtime
from tests.conftest_api import NodeProcess, make_chain, transfer

BLOCK_INTERVAL_S = 0.05
TEST_BUDGET_S = 60


@dataclass
class Track:
    """What the client side knows: everything it sent, and what the node acknowledged."""

    users: list[KeyPair]
    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    nonces: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def resync(self, client: HttpClient) -> None:
        """After a crash the fate of in-flight requests is unknown; the node's pending nonces say."""
        self.nonces = [client.account(u.address_text)["pending_nonce"] for u in self.users]


class Submitter(threading.Thread):
    """Sends transfers round-robin over the users until told to stop or the node dies."""

    def __init__(self, url: str, track: Track, batch: int) -> None:
        super().__init__(name="submitter", daemon=True)
        self.url = url
        self.track = track
        self.batch = batch
        self.stop = threading.Event()

    def run(self) -> None:
        t = self.track
        n = len(t.users)
        i = 0
        with HttpClient(self.url, timeout=10) as client:
            while not self.stop.is_set():
                sender, to = t.users[i % n], t.users[(i + 1) % n]
                first = t.nonces[i % n]
                raws = [transfer(sender, first + j, to.address, 1 + j) for j in range(self.batch)]
                ids = [decode_tx(r).id.hex() for r in raws]
                with t.lock:
                    t.sent.update(ids)
                try:
                    results = [client.submit(raws[0])] if self.batch == 1 else client.submit_many(raws)
                except LedgerError as exc:
                    if exc.code is not errors.NODE_UNREACHABLE:
                        t.failures.append(f"{exc.code.name}: {exc.detail}")
                    return  # killed under us: what was in flight is neither acked nor refused
                for tx_id, r in zip(ids, results, strict=True):
                    if r.get("tx_id") != tx_id:
                        t.failures.append(f"{tx_id}: {r}")
                        return
                    with t.lock:
                        t.acked.add(tx_id)
                t.nonces[i % n] = first + self.batch
                i += 1


def check_on_disk(data: Path, runtime: Runtime, track: Track, last_height: int, all_included: bool = False) -> int:
    """The checks (a), (b) and (c), on the store while no node has it open; returns the head height."""
    store = Store.open(data)
    try:
        report = verify_chain(store, runtime)
        assert report.ok, report.to_json()
        assert report.head_height >= last_height, "the head went backwards"
        pending = {tx_id.hex() for tx_id, _ in store.mempool()}
        assert pending <= track.sent, "the mempool holds a transaction nobody sent"
        for tx_id in track.acked:
            included = store.find_tx(bytes.fromhex(tx_id)) is not None
            assert included != (tx_id in pending), f"acknowledged {tx_id} is {'in both' if included else 'lost'}"
            assert included or not all_included, f"acknowledged {tx_id} never got included"
        for block in store.blocks(last_height + 1):
            assert {decode_tx(raw).id.hex() for raw in block.txs} <= track.sent, "a block holds a foreign tx"
        return report.head_height
    finally:
        store.close()


def crash_many_times(tmp: Path, genesis: Genesis, proposer: KeyPair, users: list[KeyPair], kills: int, seed: int,
                     batch: int, url: str | None = None) -> Track:
    started = time.monotonic()
    runtime = default_runtime()
    data = make_chain(tmp / "chain", genesis, runtime, proposer, url)
    log = tmp / "node.log"
    rng = random.Random(seed)
    track = Track(users, nonces=[0] * len(users))
    height = 0
    startup_kills = 0
    for life in range(kills):
        proc = NodeProcess(data, BLOCK_INTERVAL_S, log)
        submitter: Submitter | None = None
        try:
            if life % 5 == 2 or rng.random() < 0.1:  # die while starting: imports, store, mempool reload
                startup_kills += 1
                time.sleep(rng.uniform(0.0, 0.5))
            else:
                url = proc.wait_listening()
                with HttpClient(url) as client:
                    assert client.status()["height"] >= height
                    track.resync(client)
                submitter = Submitter(url, track, batch)
                submitter.start()
                time.sleep(rng.uniform(0.05, 0.5))
            proc.kill()  # the crash: SIGKILL, mid-request or mid-block as it falls
        finally:
            proc.kill()
            if submitter is not None:
                submitter.stop.set()
                submitter.join(15)
        assert not track.failures, track.failures
        height = check_on_disk(data, runtime, track, height)

    proc = NodeProcess(data, BLOCK_INTERVAL_S, log)
    try:
        with HttpClient(proc.wait_listening()) as client:
            deadline = time.monotonic() + 20
            while client.status()["pending"] and time.monotonic() < deadline:
                time.sleep(0.05)
            for tx_id in sorted(track.acked)[:20]:
                assert client.wait_for_tx(tx_id, timeout_s=5)["status"] == "included"
        proc.signal(signal.SIGTERM)
        assert proc.wait_exit() == 0, log.read_text()[-2000:]
    finally:
        proc.kill()
    check_on_disk(data, runtime, track, height, all_included=True)
    assert startup_kills and len(track.acked) >= 100, (startup_kills, len(track.acked))
    assert time.monotonic() - started < TEST_BUDGET_S
    return track


def test_sigkill_single_submits(tmp_path: Path, genesis: Genesis, proposer: KeyPair, users: list[KeyPair],
                                store_url: str | None) -> None:
    """On PostgreSQL the server keeps running while the node dies; only the node is killed."""
    crash_many_times(tmp_path, genesis, proposer, users, kills=15, seed=20261126, batch=1, url=store_url)


def test_sigkill_batched_submits(tmp_path: Path, genesis: Genesis, proposer: KeyPair, users: list[KeyPair],
                                 store_url: str | None) -> None:
    crash_many_times(tmp_path, genesis, proposer, users, kills=15, seed=4242, batch=16, url=store_url)
