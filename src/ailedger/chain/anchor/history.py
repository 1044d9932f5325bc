"""What anchoring reads of a chain's history: headers linked by hash, and the state at a height.

The replay itself (genesis plus the stored blocks through `Runtime.validate_block`) is chain/replay.py's,
the same one `chain verify` runs; it is re-exported here for the anchoring modules.
"""

from __future__ import annotations

from collections import deque
from itertools import pairwise

from ailedger.chain.block import BlockHeader
from ailedger.chain.replay import BrokenBlock, ChainReader, Progress, replay
from ailedger.chain.runtime import Runtime
from ailedger.chain.state import State
from ailedger.core import errors
from ailedger.core.errors import LedgerError

__all__ = ["BrokenBlock", "ChainReader", "Progress", "linked_headers", "replay", "state_at"]

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
