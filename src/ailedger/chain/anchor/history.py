"""Replay a chain block by block, yielding each validated header with the state after it.

Why a generator beside chain/replay.py's `verify_chain`: anchoring needs to stop at a height (the
state at an anchored block, for an account proof) and to look at every header on the way (to
compare it with its anchor), while sharing the same rule: genesis plus the stored blocks, run
through `Runtime.validate_block`, must give every root in every header.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Protocol

from ailedger.chain.block import Block, BlockHeader
from ailedger.chain.genesis import Genesis
from ailedger.chain.receipt import Receipt
from ailedger.chain.runtime import Runtime
from ailedger.chain.state import State
from ailedger.core import errors
from ailedger.core.errors import LedgerError

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


def linked_headers(reader: ChainReader, start: int, end: int) -> list[BlockHeader]:
    """Headers `start`..`end`, each checked to name the one before it by hash (a fork shows up here)."""
    headers = [reader.header(h) for h in range(start, end + 1)]
    for prev, nxt in pairwise(headers):
        if nxt.height != prev.height + 1 or nxt.parent != prev.hash:
            raise LedgerError(errors.ANCHOR_MISMATCH, f"block {nxt.height} does not name block {prev.height} as parent")
    return headers


def state_at(reader: ChainReader, runtime: Runtime, height: int, progress: Progress | None = None) -> State:
    """The state right after block `height`: the stored rows if the head is there and agrees, else a replay."""
    if reader.height() == height:
        stored = reader.load_state()
        if reader.height() == height and stored.root() == reader.header(height).state_root:
            return stored
    last = deque(replay(reader, runtime, height, progress), maxlen=1)  # the state object, advanced to `height`
    return last[0][1]
