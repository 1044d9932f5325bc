"""Fixed-width lists under one state key: the per-height queues that end_block works through.

Why one shape: jobs due at a height, withdrawals released at a height and keys expiring at a height
are all "append a fixed-size id now, read them all back at that block"; the bytes are the ids
concatenated in the order they were appended, so replay reads back exactly the same order.
"""

from __future__ import annotations

from ailedger.chain.params import Reader, Writer


def append_item(state: Writer, key: bytes, item: bytes) -> None:
    """Append `item` (every item under `key` has the same size) to the list stored under `key`."""
    state.set(key, (state.get(key) or b"") + item)


def items(state: Reader, key: bytes, size: int) -> list[bytes]:
    """The items stored under `key`, each `size` bytes, in the order they were appended."""
    raw = state.get(key) or b""
    return [raw[i:i + size] for i in range(0, len(raw), size)]
