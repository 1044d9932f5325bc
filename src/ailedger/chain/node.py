"""The node: one data directory, its state in memory, a mempool, and a block producer.

Why a lock around everything: the HTTP server runs handlers on a thread pool while the producer
thread seals blocks; a single lock keeps "state, mempool and store agree" true at every moment a
reader can observe. A transaction is acknowledged only after it is written to the persisted
mempool, so a crash after the acknowledgement cannot lose it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

from ailedger.chain import accounts, params
from ailedger.chain.blobstore import BlobStore
from ailedger.chain.block import Block, BlockHeader
from ailedger.chain.mempool import Mempool
from ailedger.chain.proofs import AccountProof, receipt_proof_json
from ailedger.chain.receipt import RECEIPT
from ailedger.chain.runtime import Built, Runtime
from ailedger.chain.state import State
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
        self.mempool_limit = mempool_limit
        self.state: State
        self.mempool: Mempool
        self._synced_height = 0  # the store's head this memory reflects
        self._seq = 0  # the newest persisted mempool row this memory has seen
        self._stale = False  # memory may differ from the store (a commit failed); reload before use
        self._reload()
        self.chain_id = self.mempool.head.chain_id
        self._blobs: BlobStore | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def can_produce(self) -> bool:
        return self.key is not None and self.key.public_key == self.state.get(b"chain/proposer")

    def _reload_mempool(self) -> None:
        stale = []
        for seq, tx_id, raw in self.store.mempool_since(0):
            self._seq = seq  # rows come oldest first
            try:
                self.mempool.admit(decode_tx(raw))
            except LedgerError:
                stale.append(tx_id)
        if stale and not self.store.shared:  # in a shared store the producer prunes what its blocks make invalid
            self.store.mempool_remove(stale)

    def _reload(self) -> None:
        """Build memory (state, mempool) from the store, which is the truth: at start, and after a failed commit."""
        self._stale = True
        state = self.store.load_state()
        head = self.store.head()
        if state.root() != head.state_root:
            raise LedgerError(errors.STORE_CORRUPT, f"stored state root differs from block {head.height}'s header")
        self.state = state
        self.mempool = Mempool(self.runtime, state, head, self.mempool_limit)
        self._synced_height = head.height
        self._seq = 0
        self._reload_mempool()
        self._stale = False

    def sync(self) -> None:
        """Catch up with what other processes sharing the store wrote: new blocks and pending transactions.

        Only a shared (server) store has such writers; the embedded store returns at once. New blocks
        are read as the state rows they changed, and the resulting root must equal the new head's, or
        memory is rebuilt from the store whole.
        """
        if not self.store.shared and not self._stale:
            return
        with self.lock:
            if self._stale:
                self._reload()
                return
            height, seq = self.store.tips()
            if height > self._synced_height:
                head, rows, done = self.store.catch_up(self._synced_height)
                self.state.load_rows(rows)
                if self.state.root() != head.state_root:
                    self._reload()
                    return
                self._synced_height = head.height
                self.mempool.after_block(head, done)
            if seq > self._seq:
                for s, _, raw in self.store.mempool_since(self._seq):
                    self._seq = s
                    # already pending here, or made invalid by a block: the producer drops it
                    with contextlib.suppress(LedgerError):
                        self.mempool.admit(decode_tx(raw))

    # -- writes ----------------------------------------------------------------------------------

    def submit(self, raw: bytes) -> dict[str, Any]:
        """Admit and persist one transaction; returns its id once it is safe on disk."""
        tx = decode_tx(raw)
        with self.store.serialized(), self.lock:
            self.sync()
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
            if self.store.shared and not self.store.try_lead():
                return None  # another process sharing the store is the producer
            self.sync()
            if not len(self.mempool):
                return None
            head = self.store.head()
            candidates = self.mempool.batch(self._max_block_txs())
            built = self.runtime.build_block(self.state, head, timestamp_ms or now_ms(), self.key, candidates)
            return self._commit(built, head)

    def apply_block(self, block: Block) -> Built:
        """Re-execute a block made elsewhere (a replica's primary) and commit it only if every root matches.

        Nothing in `block` is trusted: `validate_block` checks the proposer's signature, the
        transactions root, each transaction, the receipts root and the state root. A block that
        fails leaves the state and the store exactly as they were. Held under the node's lock like
        block production, so no reader ever sees a block half applied.
        """
        with self.lock:
            self.sync()  # memory left stale by a failed commit is rebuilt from the store first
            head = self.store.head()
            built = self.runtime.validate_block(self.state, head, block)
            self._commit(built, head)
            return built

    def _commit(self, built: Built, parent: BlockHeader) -> Block:
        """Persist a block already applied to `self.state`, then settle the mempool on the new head."""
        try:
            self.store.commit_block(built)
        except BaseException:
            self._stale = True  # memory holds a block the store may lack; rebuild from the store, now or later
            with contextlib.suppress(LedgerError):  # the store is unreachable: sync() reloads before next use
                self._reload()
            raise
        assert built.block is not None
        self._synced_height = built.block.header.height
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
            if len(self.mempool) or self.store.shared:  # a shared store's pending rows may come from elsewhere
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
