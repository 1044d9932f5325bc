"""The node: one data directory, its state in memory, a mempool, and a block producer.

Why a lock around everything: the HTTP server runs handlers on a thread pool while the producer
thread seals blocks; a single lock keeps "state, mempool and store agree" true at every moment a
reader can observe. A transaction is acknowledged only after it is written to the persisted
mempool, so a crash after the acknowledgement cannot lose it.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from ailedger.chain import accounts, params
from ailedger.chain.blobstore import BlobStore
from ailedger.chain.block import Block
from ailedger.chain.mempool import Mempool
from ailedger.chain.proofs import AccountProof, receipt_proof_json
from ailedger.chain.receipt import RECEIPT
from ailedger.chain.runtime import Runtime
from ailedger.chain.store import Store
from ailedger.chain.tx import decode_tx
from ailedger.chain.views import block_json, tx_json
from ailedger.core import errors
from ailedger.core.address import decode_address, encode_address
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.core.merkle import MerkleTree

_log = logging.getLogger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Node:
    def __init__(self, store: Store | Path | str, runtime: Runtime, key: KeyPair | None = None,
                 block_interval_s: float = 0.5, mempool_limit: int = 50_000) -> None:
        self.store = store if isinstance(store, Store) else Store.open(store)
        self.runtime = runtime
        self.key = key
        self.block_interval_s = block_interval_s
        self.lock = threading.RLock()
        self.state = self.store.load_state()
        head = self.store.head()
        if self.state.root() != head.state_root:
            raise LedgerError(errors.STORE_CORRUPT,
                              f"stored state root differs from block {head.height}'s header")
        self.chain_id = head.chain_id
        self.mempool = Mempool(runtime, self.state, head, mempool_limit)
        self._reload_mempool()
        self._blobs: BlobStore | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def can_produce(self) -> bool:
        return self.key is not None and self.key.public_key == self.state.get(b"chain/proposer")

    def _reload_mempool(self) -> None:
        stale = []
        for tx_id, raw in self.store.mempool():
            try:
                self.mempool.admit(decode_tx(raw))
            except LedgerError:
                stale.append(tx_id)
        if stale:
            self.store.mempool_remove(stale)

    # -- writes ----------------------------------------------------------------------------------

    def submit(self, raw: bytes) -> dict[str, Any]:
        """Admit and persist one transaction; returns its id once it is safe on disk."""
        tx = decode_tx(raw)
        with self.lock:
            if self.store.find_tx(tx.id) is not None:
                raise LedgerError(errors.DUPLICATE_TX, "already included in a block")
            self.mempool.admit(tx)
            try:
                self.store.mempool_add(tx.id, tx.raw)
            except BaseException:
                self.mempool.after_block(self.mempool.head, [tx.id])
                raise
            full = len(self.mempool) >= self._max_block_txs()
        if full:
            self._wake.set()
        return {"tx_id": tx.id.hex(), "status": "pending"}

    def _max_block_txs(self) -> int:
        return params.get(self.state, "max_block_txs")

    def produce_block(self, timestamp_ms: int | None = None) -> Block | None:
        """Seal the pending transactions into a block and commit it; None if there is nothing to do."""
        if self.key is None or not self.can_produce:
            raise LedgerError(errors.BAD_BLOCK, "this node has no authorised proposer key")
        with self.lock:
            if not len(self.mempool):
                return None
            head = self.store.head()
            candidates = self.mempool.batch(self._max_block_txs())
            built = self.runtime.build_block(self.state, head, timestamp_ms or now_ms(), self.key, candidates)
            try:
                self.store.commit_block(built)
            except BaseException:
                self.state = self.store.load_state()  # the store is the truth; rebuild memory from it
                self.mempool = Mempool(self.runtime, self.state, head, self.mempool.limit)
                self._reload_mempool()
                raise
            assert built.block is not None
            done = [t.id for t in built.included] + [t.id for t, _ in built.rejected]
            dropped = self.mempool.after_block(built.block.header, done)
            if dropped:
                self.store.mempool_remove([t.id for t in dropped])
            return built.block

    # -- producer loop ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None and self.can_produce:
            self._thread = threading.Thread(target=self._run, name="block-producer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.block_interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            if len(self.mempool):
                try:
                    self.produce_block()
                except Exception:  # a failed block must not silently end block production for good
                    _log.exception("producing a block failed; retrying after the next interval")

    # -- reads -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self.lock:
            head = self.store.head()
            return {"chain_id": self.chain_id, "height": head.height, "head_hash": head.hash.hex(),
                    "state_root": head.state_root.hex(), "pending": len(self.mempool),
                    "producing": self.can_produce, "genesis": self.store.genesis.to_json()}

    def account(self, address: str, proof: bool = False) -> dict[str, Any]:
        raw_addr = decode_address(address)
        with self.lock:
            head = self.store.head()
            key = accounts.account_key(raw_addr)
            committed = self.state.proof(key)
            acct = accounts.decode_account(committed[0]) if committed and committed[0] else accounts.Account()
            pending = accounts.get_account(self.mempool.overlay, raw_addr)
            out: dict[str, Any] = {"address": encode_address(raw_addr), "height": head.height,
                                   **acct.to_json(), "pending_nonce": pending.nonce}
            if proof:
                if committed is None:
                    raise LedgerError(errors.NOT_FOUND, f"{address} has never held funds, so it has no proof")
                out["proof"] = AccountProof(raw_addr, acct, head.height, head.state_root, committed[1]).to_json()
        return out

    def block(self, height: int | str) -> dict[str, Any]:
        h = self.store.height() if height == "latest" else int(height)
        block = self.store.block(h)
        txs = [decode_tx(r) for r in block.txs]
        return block_json(self.runtime, block, self.store.receipts(h), txs)

    def tx(self, tx_id_hex: str, proof: bool = False) -> dict[str, Any]:
        try:
            tx_id = bytes.fromhex(tx_id_hex)
        except ValueError as exc:
            raise LedgerError(errors.BAD_HEX, tx_id_hex) from exc
        with self.lock:  # both lookups at one instant: a block sealed between them would hide the tx
            found = self.store.find_tx(tx_id)
            pending = self.mempool.pending.get(tx_id) if found is None else None
        if found is None:
            if pending is None:
                raise LedgerError(errors.NOT_FOUND, f"no transaction {tx_id_hex}")
            return {**tx_json(self.runtime, pending.tx), "status": "pending"}
        height, pos, raw, receipt = found
        out = {**tx_json(self.runtime, decode_tx(raw), receipt, height, pos), "status": "included"}
        if proof:
            receipts = self.store.receipts(height)
            tree = MerkleTree.from_data([RECEIPT.encode(r) for r in receipts])
            header = self.store.block(height).header
            out["receipt_proof"] = receipt_proof_json(receipt, height, header.receipts_root, tree.proof(pos))
        return out

    def params(self) -> dict[str, Any]:
        registry = self.runtime.params
        with self.lock:
            return {name: registry.doc(self.state, name) for name in sorted(registry.specs)}

    def param_history(self, name: str, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        with self.lock:
            return {"height": self.store.height(),
                    **self.runtime.params.history_doc(self.state, name, offset, limit)}

    # -- blobs -----------------------------------------------------------------------------------

    @property
    def blobs(self) -> BlobStore:
        """The data directory's content-addressed blob store (records, schemas), opened on first use."""
        if self._blobs is None:
            self._blobs = BlobStore(self.store.dir / "blobs")
        return self._blobs

    def put_blobs(self, blobs: list[bytes]) -> list[str]:
        return [h.hex() for h in self.blobs.put_many(blobs)]

    def get_blob(self, hash_hex: str) -> bytes:
        try:
            h = bytes.fromhex(hash_hex)
        except ValueError as exc:
            raise LedgerError(errors.BAD_HEX, hash_hex) from exc
        return self.blobs.get(h)

    def close(self) -> None:
        self.stop()
        if self._blobs is not None:
            self._blobs.close()
        self.store.close()
