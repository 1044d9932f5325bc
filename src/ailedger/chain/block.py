"""Blocks: a signed header committing to the transactions, their receipts and the resulting state.

Header layout (docs/encoding.md): u8 version | text chain_id | u64 height | b32 parent hash |
u64 timestamp (ms) | b32 proposer public key | u32 tx count | b32 tx root | b32 receipts root |
b32 state root. The block hash is the tagged hash of the header bytes; the proposer signs that hash.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ailedger.core.encoding import B32, U8, U32, U64, Record, Text
from ailedger.core.hashing import tagged
from ailedger.core.keys import KeyPair, verify

VERSION = 1
BLOCK_SIGN_TAG = b"ailedger/block/v1"
NO_SIGNATURE = bytes(64)


@dataclass(frozen=True)
class BlockHeader:
    version: int
    chain_id: str
    height: int
    parent: bytes
    timestamp_ms: int
    proposer: bytes
    tx_count: int
    tx_root: bytes
    receipts_root: bytes
    state_root: bytes

    def encode(self) -> bytes:
        return HEADER.encode(self)

    @property
    def hash(self) -> bytes:
        return tagged(b"block", self.encode())

    def sign(self, key: KeyPair) -> bytes:
        return key.sign(BLOCK_SIGN_TAG + self.hash)

    def signature_ok(self, signature: bytes) -> bool:
        return verify(self.proposer, BLOCK_SIGN_TAG + self.hash, signature)

    def with_roots(self, receipts_root: bytes, state_root: bytes) -> BlockHeader:
        return replace(self, receipts_root=receipts_root, state_root=state_root)

    def to_json(self) -> dict[str, object]:
        return {"version": self.version, "chain_id": self.chain_id, "height": self.height,
                "hash": self.hash.hex(), "parent": self.parent.hex(), "timestamp_ms": self.timestamp_ms,
                "proposer": self.proposer.hex(), "tx_count": self.tx_count, "tx_root": self.tx_root.hex(),
                "receipts_root": self.receipts_root.hex(), "state_root": self.state_root.hex()}


HEADER: Record[BlockHeader] = Record(BlockHeader, {
    "version": U8, "chain_id": Text(32), "height": U64, "parent": B32, "timestamp_ms": U64,
    "proposer": B32, "tx_count": U32, "tx_root": B32, "receipts_root": B32, "state_root": B32,
})


@dataclass(frozen=True)
class Block:
    header: BlockHeader
    signature: bytes
    txs: list[bytes]
