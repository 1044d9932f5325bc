"""One anchor: what the contract keeps for a ledger block, and which height is due next.

Why the block hash besides the two roots: a receipt in an un-anchored block is proven by its
receipts-root Merkle proof plus the chain of headers, each naming its parent's hash, up to a block
whose hash is anchored. The roots alone would only cover the anchored blocks themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ailedger.chain.block import BlockHeader


@dataclass(frozen=True)
class Anchor:
    height: int
    block_hash: bytes
    state_root: bytes
    receipts_root: bytes
    evm_block: int = 0  # the EVM block that recorded it (0 while not yet posted)

    @classmethod
    def of(cls, header: BlockHeader) -> Anchor:
        return cls(header.height, header.hash, header.state_root, header.receipts_root)

    def matches(self, header: BlockHeader) -> bool:
        return (header.height == self.height and header.hash == self.block_hash
                and header.state_root == self.state_root and header.receipts_root == self.receipts_root)

    def to_json(self) -> dict[str, Any]:
        return {"height": self.height, "block_hash": self.block_hash.hex(), "state_root": self.state_root.hex(),
                "receipts_root": self.receipts_root.hex(), "evm_block": self.evm_block}


def due_height(head: int, last_anchored: int, every: int) -> int | None:
    """The height to anchor now, or None: the highest multiple of `every` at or below the head, if new.

    Only the newest due height is posted after an outage: every anchor covers all blocks before it
    through the header chain, so catching up one multiple at a time would only spend gas.
    """
    due = head // every * every
    return due if due > last_anchored and due > 0 else None


def covering(anchors: list[Anchor], height: int) -> Anchor | None:
    """The lowest anchor at or above `height` (anchors sorted by height): the one that proves that block."""
    for a in anchors:
        if a.height >= height:
            return a
    return None
