"""The follower: a replica's loop that fetches its primary's blocks, re-executes each, and commits it.

Why re-execute rather than copy: a replica that stored what it was sent would serve a lying
primary's lies with its own name on them. Every block goes through `Runtime.validate_block` (the
proposer's signature, the transactions root, each transaction's admission, the receipts root and
the state root) in `Node.apply_block`, under the node's lock, so readers see a block whole or not
at all, and a block that disagrees is never stored.

What it does on trouble:
* the primary is down or answers 5xx: wait (0.25 s doubling to `max_backoff_s`) and ask again,
  serving the verified blocks all the while;
* the primary serves a block that does not verify, or bytes no node would send: stop following for
  good (until restart) and keep the coded error, naming the height and what disagreed, where
  `status()` shows it. Retrying would only fetch the same lie again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ailedger.chain.block import Block
from ailedger.chain.node import Node
from ailedger.chain.replication import PrimaryClient
from ailedger.core import errors
from ailedger.core.errors import LedgerError

_log = logging.getLogger(__name__)

BATCH_BLOCKS = 32
FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 5.0

# States a follower reports.
FOLLOWING = "following"  # in step with the primary (or catching up)
WAITING = "waiting"  # the primary did not answer; retrying with backoff
REFUSED = "refused"  # the primary served a block that does not verify; no longer following


@dataclass(frozen=True)
class Applied:
    blocks: int
    txs: int


def apply_blocks(node: Node, blocks: Iterable[Block]) -> Applied:
    """Verify and commit `blocks` in order on top of `node`'s head; stops at the first that disagrees.

    The first bad block raises replica_primary_diverged naming its height and what disagreed (the
    original code and detail in the message); the blocks before it stay committed, and the bad one
    leaves no trace. A store with no HTTP around it is followed the same way: `Node(store, runtime)`.
    """
    n = txs = 0
    for block in blocks:
        try:
            node.apply_block(block)
        except LedgerError as exc:
            if exc.code not in (errors.BAD_BLOCK, errors.ROOT_MISMATCH):
                raise
            raise LedgerError(errors.REPLICA_PRIMARY_DIVERGED,
                              f"block {block.header.height}: {exc.code.name}: {exc.detail}") from exc
        n += 1
        txs += len(block.txs)
    return Applied(n, txs)


def check_block_zero(primary: PrimaryClient, expected: bytes) -> None:
    """The primary's block 0 must be the genesis block its genesis document makes (hash `expected`)."""
    blocks, _ = primary.blocks(0, 1)
    if not blocks or blocks[0].header.hash != expected:
        raise LedgerError(errors.REPLICA_GENESIS_MISMATCH, f"{primary.url}'s block 0 is not the block its "
                          "genesis document makes")


def retryable(exc: LedgerError) -> bool:
    """Worth asking again later: the primary is away or failing inside, not lying."""
    return exc.code in (errors.REPLICA_PRIMARY_UNREACHABLE, errors.INTERNAL, errors.NODE_UNREACHABLE)


class Follower:
    """Drives one replica `node` from `primary`; `start` runs it in a daemon thread, `step` runs one round."""

    def __init__(self, node: Node, primary: PrimaryClient, poll_s: float = 0.25,
                 batch_blocks: int = BATCH_BLOCKS, max_backoff_s: float = MAX_BACKOFF_S) -> None:
        self.node = node
        self.primary = primary
        self.poll_s = poll_s
        self.batch_blocks = batch_blocks
        self.max_backoff_s = max_backoff_s
        self.phase = FOLLOWING
        self.error: LedgerError | None = None
        self.primary_height: int | None = None
        self.verified_blocks = 0
        self.verified_txs = 0
        self._checked = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one round -------------------------------------------------------------------------------

    def check_primary(self) -> None:
        """Refuse a primary of another chain id or genesis, or one whose block at this node's head differs.

        Done once, before the first block is fetched: the chain id and genesis document must be
        equal, the primary's block 0 must be the block that document makes, and the block the
        primary holds at our head height must be the very block this node verified there.
        """
        _, genesis = self.primary.status()
        local = self.node.store.genesis
        if genesis.chain_id != local.chain_id:
            raise LedgerError(errors.REPLICA_WRONG_CHAIN, f"{self.primary.url} serves chain {genesis.chain_id!r}; "
                              f"this replica holds chain {local.chain_id!r}")
        if genesis.canonical() != local.canonical():
            raise LedgerError(errors.REPLICA_GENESIS_MISMATCH, f"{self.primary.url}'s genesis document differs "
                              f"from this replica's (chain {local.chain_id!r})")
        check_block_zero(self.primary, self.node.store.header(0).hash)
        height = self.node.store.height()
        if height > 0:
            theirs, head = self.primary.blocks(height, 1)
            if theirs and theirs[0].header.hash != self.node.store.header(height).hash:
                raise LedgerError(errors.REPLICA_PRIMARY_DIVERGED, f"block {height}: the primary's block differs "
                                  "from the one this replica verified at that height")
            if head < height:
                _log.warning("primary %s is at height %d, behind this replica's %d; waiting for it",
                             self.primary.url, head, height)
        self._checked = True

    def step(self) -> int:
        """Fetch the next batch after this node's head and apply it; returns how many blocks it applied.

        Raises what went wrong: replica_primary_unreachable (and other `retryable` codes) or a
        refusal (replica_primary_diverged, replica_bad_answer, replica_wrong_chain, ...).
        """
        if not self._checked:
            self.check_primary()
        start = self.node.store.height() + 1
        blocks, head = self.primary.blocks(start, self.batch_blocks)
        self.primary_height = head
        if not blocks and head >= start:
            raise LedgerError(errors.REPLICA_BAD_ANSWER, f"the primary is at height {head} but sent no block "
                              f"from {start}")
        for block in blocks:  # counted one by one, so a refusal mid-batch still counts what went before
            self.verified_txs += apply_blocks(self.node, [block]).txs
            self.verified_blocks += 1
        return len(blocks)

    def catch_up(self, timeout_s: float = 60.0) -> int:
        """Apply blocks until this node reaches the primary's head as it was asked; returns the height."""
        deadline = time.monotonic() + timeout_s
        while self.step():
            if time.monotonic() > deadline:
                raise TimeoutError(f"not caught up after {timeout_s} s")
        return self.node.store.height()

    # -- the loop --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="replica-follower", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        backoff = FIRST_BACKOFF_S
        while not self._stop.is_set():
            try:
                applied = self.step()
            except LedgerError as exc:
                if not retryable(exc):
                    self._refuse(exc)
                    return
                problem = exc
            except Exception as exc:  # a failing disk must not end following silently; the store is intact
                _log.exception("applying the primary's blocks failed; retrying")
                problem = LedgerError(errors.INTERNAL, f"{type(exc).__name__}: {exc}")
            else:
                self.phase, self.error, backoff = FOLLOWING, None, FIRST_BACKOFF_S
                if not applied or (self.primary_height or 0) <= self.node.store.height():
                    self._stop.wait(self.poll_s)
                continue
            if self.phase != WAITING:
                _log.warning("primary %s: %s: %s; retrying", self.primary.url, problem.code.name, problem.detail)
            self.phase, self.error = WAITING, problem
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    def _refuse(self, exc: LedgerError) -> None:
        self.phase, self.error = REFUSED, exc
        _log.error("replica stopped following %s at height %d: %s: %s", self.primary.url,
                   self.node.store.height(), exc.code.name, exc.detail)

    def status(self) -> dict[str, object]:
        """What `/v1/status` shows under "replica": the primary, how far along, and any coded error."""
        return {"primary": self.primary.url, "state": self.phase, "primary_height": self.primary_height,
                "verified_blocks": self.verified_blocks, "verified_txs": self.verified_txs,
                "error": self.error.to_json() if self.error is not None else None}
