"""An append-only Merkle frontier: the root over n leaves from O(log n) stored nodes.

Why: a snapshot must commit to every accepted record hash, and a Datanet may hold millions; reading
them all inside one transaction would make its cost grow without bound for a fixed fee. The
frontier keeps, per level k, the last complete left subtree of 2^k leaves (the deposit-contract
technique), so appending a leaf and computing the root each cost about log2(n) hashes, and the root
is exactly `core.merkle.merkle_root` of the same leaves in the same order (the tests check it):
leaves padded with zero subtrees to the next power of two, root sealed with the leaf count.
"""

from __future__ import annotations

import hashlib
import struct

from ailedger.core.hashing import leaf_hash
from ailedger.core.merkle import ZERO

_NODE = b"\x01"  # the inner-node and root tags of core.merkle
_ROOT = b"\x02"
_U64 = struct.Struct(">Q")


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _levels(raw: bytes) -> list[bytes]:
    return [raw[i:i + 32] for i in range(0, len(raw), 32)]


def append(raw: bytes, count: int, data: bytes) -> bytes:
    """The frontier after appending leaf `data` to a tree of `count` leaves whose frontier is `raw`."""
    branch = _levels(raw)
    node = leaf_hash(data)
    size = count + 1
    level = 0
    while not size & 1:
        node = _node(branch[level], node)
        size >>= 1
        level += 1
    while len(branch) <= level:
        branch.append(bytes(32))
    branch[level] = node
    return b"".join(branch)


def root(raw: bytes, count: int) -> bytes:
    """Root of the tree of `count` leaves: equal to core.merkle.merkle_root over the same leaf data."""
    branch = _levels(raw)
    if count == 0:
        top = ZERO[0]
    elif count & (count - 1) == 0:  # a full tree: its top is the stored complete subtree
        top = branch[count.bit_length() - 1]
    else:
        node = ZERO[0]
        size = count
        for level in range((count - 1).bit_length()):
            node = _node(branch[level], node) if size & 1 else _node(node, ZERO[level])
            size >>= 1
        top = node
    return hashlib.sha256(_ROOT + _U64.pack(count) + top).digest()
