"""Pending transactions, admitted only if they would succeed on top of everything already pending.

Why a speculative overlay: checking a transaction against committed state alone would accept two
transfers that each fit the balance but not together, or a nonce that skips a pending one. Each
admitted transaction is applied to an overlay of the head state, so admission sees the same state
the next block will; a transaction whose handler would fail (say, amount + fee above the balance)
is refused with its error and never costs its sender a fee.
"""

from __future__ import annotations

from ailedger.chain.block import BlockHeader
from ailedger.chain.module import BlockContext
from ailedger.chain.runtime import Checked, Runtime
from ailedger.chain.state import Overlay, State
from ailedger.chain.tx import Tx
from ailedger.core import errors
from ailedger.core.errors import LedgerError


class Mempool:
    def __init__(self, runtime: Runtime, state: State, head: BlockHeader, limit: int = 50_000) -> None:
        self.runtime = runtime
        self.limit = limit
        self.pending: dict[bytes, Checked] = {}
        self._state = state
        self._reset_overlay(head)

    def _reset_overlay(self, head: BlockHeader) -> None:
        self.head = head
        self.overlay = Overlay(self._state)
        self._ctx = BlockContext(head.chain_id, head.height + 1, head.timestamp_ms, head.proposer, head.hash)

    def __len__(self) -> int:
        return len(self.pending)

    def admit(self, tx: Tx) -> None:
        """Accept `tx` or raise the specific reason; a refused transaction leaves no trace."""
        if tx.id in self.pending:
            raise LedgerError(errors.DUPLICATE_TX, tx.id.hex())
        if len(self.pending) >= self.limit:
            raise LedgerError(errors.MEMPOOL_FULL, f"{self.limit} transactions pending")
        self._admit(self.runtime.check_stateless(tx, self.head.chain_id))

    def _admit(self, checked: Checked) -> None:
        mark = self.overlay.checkpoint()
        receipt = self.runtime.apply_tx(self.overlay, self._ctx, checked)
        if not receipt.ok:
            self.overlay.revert(mark)
            code = errors.by_number(receipt.code) or errors.INTERNAL
            raise LedgerError(code, "the transaction would fail if included, so it was not accepted")
        self.overlay.release()
        self.pending[checked.tx.id] = checked

    def batch(self, n: int) -> list[Checked]:
        return list(self.pending.values())[:n]

    def after_block(self, head: BlockHeader, done: list[bytes]) -> list[Tx]:
        """Drop included or rejected ids, re-admit the rest on the new head; returns those now invalid.

        Signatures and payloads were checked once on the way in (`Checked`), so re-admission only
        re-runs the stateful part.
        """
        for i in done:
            self.pending.pop(i, None)
        rest = list(self.pending.values())
        self.pending = {}
        self._reset_overlay(head)
        dropped = []
        for checked in rest:
            try:
                self._admit(checked)
            except LedgerError:
                dropped.append(checked.tx)
        return dropped
