"""A read replica: a node that takes its blocks from a primary, verified, instead of producing them.

Why a `Node` subclass: the API, the explorer and the CLI already speak to a `Node`; a replica answers
every read from its own store and state exactly as a primary would, and differs only where a
primary would write. It has no proposer key, so it never produces a block; `start` runs the
follower instead of the producer; and a write (a transaction or a blob) is forwarded to the primary,
whose answer or error comes back unchanged, so a client pointed at a replica works as if it were
pointed at the primary (docs/replicas.md).

The replica's data directory is made from the primary's genesis on first start; later starts resume
from the replica's own head and trust nothing the primary says until it is verified.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ailedger.chain.blobstore import blob_hash
from ailedger.chain.follower import MAX_BACKOFF_S, Follower, check_block_zero
from ailedger.chain.node import Node
from ailedger.chain.replication import PrimaryClient
from ailedger.chain.runtime import Runtime
from ailedger.chain.store import Store
from ailedger.core import errors
from ailedger.core.errors import LedgerError

_log = logging.getLogger(__name__)


class ReplicaNode(Node):
    """A node whose blocks come from `primary`, each re-executed and verified before it is stored."""

    def __init__(self, store: Store, runtime: Runtime, primary: PrimaryClient, poll_s: float = 0.25,
                 max_backoff_s: float = MAX_BACKOFF_S) -> None:
        super().__init__(store, runtime, key=None, block_interval_s=poll_s)
        self.primary = primary
        self.follower = Follower(self, primary, poll_s, max_backoff_s=max_backoff_s)

    def check_primary(self) -> None:
        """Refuse a primary of another chain or genesis, or one whose block at our head is not ours."""
        self.follower.check_primary()

    # -- following instead of producing ----------------------------------------------------------

    def start(self) -> None:
        self.follower.start()

    def stop(self) -> None:
        self.follower.stop()
        super().stop()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.primary.close()

    def status(self) -> dict[str, Any]:
        return {**super().status(), "replica": self.follower.status()}

    # -- writes go to the primary ----------------------------------------------------------------

    def submit(self, raw: bytes) -> dict[str, Any]:
        """Forward the transaction; it shows here once its block has arrived and been verified."""
        return {**self.primary.submit(raw), "forwarded_to": self.primary.url}

    def put_blobs(self, blobs: list[bytes]) -> list[str]:
        """Store the blobs on the primary (where the ledger's writers read them), and keep a copy here."""
        hashes = self.primary.put_blobs(blobs)
        super().put_blobs(blobs)
        return hashes

    # -- reads that may be ahead of this replica -------------------------------------------------

    def tx(self, tx_id_hex: str, proof: bool = False) -> dict[str, Any]:
        """A transaction the primary knows but whose block is not verified here yet answers "pending"
        (never not_found, which a waiting client takes as final); its receipt is served once verified."""
        try:
            return super().tx(tx_id_hex, proof)
        except LedgerError as exc:
            if exc.code is not errors.NOT_FOUND:
                raise
            try:
                there = self.primary.tx(tx_id_hex)
            except LedgerError:
                raise exc from None
        unverified = ("receipt", "height", "position", "receipt_proof")
        return {**{k: v for k, v in there.items() if k not in unverified}, "status": "pending"}

    def get_blob(self, hash_hex: str) -> bytes:
        """A blob from this replica, else from the primary (checked against its hash, then kept here)."""
        try:
            return super().get_blob(hash_hex)
        except LedgerError as exc:
            if exc.code is not errors.BLOB_NOT_FOUND:
                raise
            try:
                data = self.primary.get_blob(hash_hex.lower())
            except LedgerError:
                raise exc from None
        if blob_hash(data).hex() != hash_hex.lower():
            raise LedgerError(errors.REPLICA_BAD_ANSWER, f"the primary's blob {hash_hex} does not hash to its name")
        self.blobs.put_many([data])
        return data


def open_replica(data_dir: Path | str, primary_url: str, runtime: Runtime, poll_s: float = 0.25,
                 max_backoff_s: float = MAX_BACKOFF_S) -> ReplicaNode:
    """Open (or, on first start, make from the primary's genesis) a replica of `primary_url` in `data_dir`.

    A primary of another chain id or genesis is refused here, before anything is served. A primary
    that is down when an existing replica starts is not fatal: the replica serves what it has, and
    the follower checks the primary once it answers.
    """
    primary = PrimaryClient(primary_url)
    try:
        try:
            store = Store.open(data_dir)
        except LedgerError as exc:
            if exc.code is not errors.NO_CHAIN:
                raise
            _, genesis = primary.status()
            check_block_zero(primary, runtime.genesis_block(genesis)[0].header.hash)
            store = Store.create(data_dir, genesis, runtime)
        try:
            node = ReplicaNode(store, runtime, primary, poll_s, max_backoff_s)
        except BaseException:
            store.close()
            raise
    except BaseException:
        primary.close()
        raise
    try:
        node.check_primary()
    except LedgerError as exc:
        if exc.code is not errors.REPLICA_PRIMARY_UNREACHABLE:
            node.close()
            raise
        _log.warning("primary %s is not answering; serving height %d and retrying", primary_url,
                     node.store.height())
    return node
