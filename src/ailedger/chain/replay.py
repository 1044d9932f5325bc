"""`chain verify`: replay every block from genesis and check every root.

Why replay instead of trusting the stored state: the stored rows are only a cache of what the
blocks imply. The auditor's check is that genesis plus the blocks, run through the rules, give
exactly the roots in every header and exactly the stored state; the first block that disagrees is
reported by height.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ailedger.chain.runtime import Runtime
from ailedger.chain.store import Store
from ailedger.core import errors
from ailedger.core.errors import LedgerError


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    blocks: int
    txs: int
    head_height: int
    state_root: str
    first_bad_height: int | None = None
    error: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def verify_chain(store: Store, runtime: Runtime, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Replay the whole chain; stops at the first block that disagrees."""
    block0, state = runtime.genesis_block(store.genesis)
    top = store.height()
    try:
        stored0 = store.block(0).header
    except LedgerError as exc:
        return VerifyReport(False, 0, 0, top, "", 0, exc.code.name, f"genesis block row: {exc.detail}")
    if stored0.hash != block0.header.hash:
        return VerifyReport(False, 0, 0, top, "", 0, errors.ROOT_MISMATCH.name,
                            "the genesis block does not match the genesis document")
    parent = block0.header
    txs = 0
    for height in range(1, top + 1):
        try:
            # Reading is inside the check: a stored row that no longer decodes is a bad block too.
            block = store.block(height)
            runtime.validate_block(state, parent, block)
        except LedgerError as exc:
            return VerifyReport(False, height - 1, txs, top, parent.state_root.hex(), height,
                                exc.code.name, exc.detail)
        txs += len(block.txs)
        parent = block.header
        if progress:
            progress(parent.height, top)
    try:
        stored = store.load_state()
        same = stored.root() == state.root() and dict(stored.items()) == dict(state.items())
    except LedgerError:
        same = False
    if not same:
        return VerifyReport(False, top, txs, top, state.root().hex(), top,
                            errors.STORE_CORRUPT.name, "stored state rows differ from the replayed state")
    return VerifyReport(True, top, txs, top, state.root().hex())
