"""`chain verify`: replay every block from genesis and check every root.

Why replay instead of trusting the stored state: the stored rows are only a cache of what the
blocks imply. The auditor's check is that genesis plus the blocks, run through the rules, give
exactly the roots in every header and exactly the stored state; the first block that disagrees is
reported by height.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from ailedger.chain.block import Block, BlockHeader
from ailedger.chain.genesis import Genesis
from ailedger.chain.receipt import Receipt
from ailedger.chain.runtime import Runtime
from ailedger.chain.state import State
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


Progress = Callable[[int, int], None]


class ChainReader(Protocol):
    """The read side of a store, whichever store `Store.open` returns (SQLite or a server database)."""

    genesis: Genesis

    def height(self) -> int: ...
    def header(self, height: int) -> BlockHeader: ...
    def block(self, height: int) -> Block: ...
    def receipts(self, height: int) -> list[Receipt]: ...
    def find_tx(self, tx_id: bytes) -> tuple[int, int, bytes, Receipt] | None: ...
    def load_state(self) -> State: ...


class BrokenBlock(Exception):
    """Block `height`'s stored data does not replay: unreadable, badly linked or with other roots."""

    def __init__(self, height: int, cause: LedgerError) -> None:
        super().__init__(f"block {height}: {cause}")
        self.height = height
        self.cause = cause


def replay(reader: ChainReader, runtime: Runtime, upto: int,
           progress: Progress | None = None) -> Iterator[tuple[BlockHeader, State]]:
    """Yield (header, state after it) for heights 0..upto; `state` is one object, advanced in place."""
    block0, state = runtime.genesis_block(reader.genesis)
    try:
        stored0 = reader.header(0)
    except LedgerError as exc:
        raise BrokenBlock(0, exc) from exc
    if stored0.hash != block0.header.hash:
        raise BrokenBlock(0, LedgerError(errors.ROOT_MISMATCH, "the genesis block does not match the genesis document"))
    parent = block0.header
    yield parent, state
    for height in range(1, upto + 1):
        try:
            block = reader.block(height)  # reading is inside the check: a row that no longer decodes is bad too
            runtime.validate_block(state, parent, block)
        except LedgerError as exc:
            raise BrokenBlock(height, exc) from exc
        parent = block.header
        if progress:
            progress(height, upto)
        yield parent, state


def verify_chain(store: Store, runtime: Runtime, progress: Progress | None = None) -> VerifyReport:
    """Replay the whole chain; stops at the first block that disagrees."""
    top = store.height()
    parent: BlockHeader | None = None
    state = State()
    txs = 0
    try:
        for parent, replayed in replay(store, runtime, top, progress):
            txs += parent.tx_count
            state = replayed  # one object advanced in place; named here for after the loop
    except BrokenBlock as broken:
        exc = broken.cause
        if broken.height == 0 and exc.code is not errors.ROOT_MISMATCH:
            return VerifyReport(False, 0, 0, top, "", 0, exc.code.name, f"genesis block row: {exc.detail}")
        return VerifyReport(False, max(broken.height - 1, 0), txs, top, parent.state_root.hex() if parent else "",
                            broken.height, exc.code.name, exc.detail)
    try:
        stored = store.load_state()
        same = stored.root() == state.root() and dict(stored.items()) == dict(state.items())
    except LedgerError:
        same = False
    if not same:
        return VerifyReport(False, top, txs, top, state.root().hex(), top,
                            errors.STORE_CORRUPT.name, "stored state rows differ from the replayed state")
    return VerifyReport(True, top, txs, top, state.root().hex())
