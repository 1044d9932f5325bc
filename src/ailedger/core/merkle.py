"""Binary Merkle trees with inclusion proofs, rebuilt incrementally.

Shape: leaves 0..n-1 padded to the next power of two with "zero" subtrees (zero[0] = 32 zero bytes,
zero[k+1] = H(0x01 || zero[k] || zero[k])); inner node = H(0x01 || left || right); leaf =
H(0x00 || data). The published root also commits to the leaf count, root = H(0x02 || u64 n || top),
so that a tree and its zero-padded twin never share a root.

Why one structure for both uses: transaction and receipt roots are built once per block from a list,
while the state tree keeps every level in memory and re-hashes only the paths above the leaves a
block changed (about m*log(n/m) hashes for m changes), which is what makes per-block state roots
affordable.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ailedger.core import errors
from ailedger.core.encoding import B32, U32, ListOf, Record
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import leaf_hash

_sha = hashlib.sha256
_NODE = b"\x01"
_ROOT = b"\x02"
_U64 = struct.Struct(">Q")

MAX_DEPTH = 48

ZERO: list[bytes] = [bytes(32)]
for _ in range(MAX_DEPTH):
    ZERO.append(_sha(_NODE + ZERO[-1] + ZERO[-1]).digest())


def _depth(n: int) -> int:
    return (n - 1).bit_length() if n > 1 else 0


def _seal(n: int, top: bytes) -> bytes:
    return _sha(_ROOT + _U64.pack(n) + top).digest()


@dataclass(frozen=True)
class MerkleProof:
    """Everything a light client needs besides the leaf data and the trusted root."""

    index: int
    size: int
    siblings: list[bytes]

    def to_bytes(self) -> bytes:
        return PROOF_CODEC.encode(self)

    @staticmethod
    def from_bytes(raw: bytes) -> MerkleProof:
        return PROOF_CODEC.decode(raw)


PROOF_CODEC: Record[MerkleProof] = Record(MerkleProof, {"index": U32, "size": U32,
                                                        "siblings": ListOf(B32, MAX_DEPTH)})


def root_from_proof(leaf: bytes, proof: MerkleProof) -> bytes:
    """Fold a leaf hash up its path; raises bad_proof if the proof's shape is impossible."""
    if proof.size < 1 or not 0 <= proof.index < proof.size or len(proof.siblings) != _depth(proof.size):
        raise LedgerError(errors.BAD_PROOF, "proof shape does not match the tree size")
    h = leaf
    i = proof.index
    for sib in proof.siblings:
        h = _sha(_NODE + sib + h).digest() if i & 1 else _sha(_NODE + h + sib).digest()
        i >>= 1
    return _seal(proof.size, h)


def verify_proof(root: bytes, data: bytes, proof: MerkleProof) -> bool:
    """True when `data` is leaf `proof.index` of the tree whose root is `root`."""
    try:
        return root_from_proof(leaf_hash(data), proof) == root
    except LedgerError:
        return False


class MerkleTree:
    """A tree of leaf hashes that keeps all levels, so updates and proofs cost O(log n)."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [list(leaves)]
        self._dirty: set[int] = set(range(len(self.levels[0])))
        self._rehash()

    @classmethod
    def from_data(cls, items: Iterable[bytes]) -> MerkleTree:
        return cls(leaf_hash(x) for x in items)

    def __len__(self) -> int:
        return len(self.levels[0])

    def append(self, leaf: bytes) -> int:
        self.levels[0].append(leaf)
        i = len(self.levels[0]) - 1
        self._dirty.add(i)
        return i

    def set(self, index: int, leaf: bytes) -> None:
        self.levels[0][index] = leaf
        self._dirty.add(index)

    def truncate(self, size: int) -> None:
        """Drop leaves from `size` on; the right edge is re-hashed on the next root."""
        del self.levels[0][size:]
        if size:
            self._dirty = {i for i in self._dirty if i < size} | {size - 1}
        else:
            self._dirty = set()

    def _rehash(self) -> None:
        n = len(self.levels[0])
        depth = _depth(n)
        while len(self.levels) < depth + 1:
            self.levels.append([])
        del self.levels[depth + 1:]
        dirty = self._dirty
        for k in range(depth):
            below = self.levels[k]
            above = self.levels[k + 1]
            width = (len(below) + 1) >> 1
            if len(above) < width:
                above.extend([ZERO[k + 1]] * (width - len(above)))
            del above[width:]
            parents = {i >> 1 for i in dirty}
            zk = ZERO[k]
            nb = len(below)
            for p in parents:
                left = below[2 * p]
                right = below[2 * p + 1] if 2 * p + 1 < nb else zk
                above[p] = _sha(_NODE + left + right).digest()
            dirty = parents
        self._dirty = set()

    def root(self) -> bytes:
        if self._dirty:
            self._rehash()
        n = len(self.levels[0])
        top = self.levels[-1][0] if n else ZERO[0]
        return _seal(n, top)

    def proof(self, index: int) -> MerkleProof:
        if self._dirty:
            self._rehash()
        n = len(self.levels[0])
        if not 0 <= index < n:
            raise LedgerError(errors.NOT_FOUND, f"leaf {index} not in a tree of {n}")
        sibs = []
        i = index
        for k in range(_depth(n)):
            level = self.levels[k]
            j = i ^ 1
            sibs.append(level[j] if j < len(level) else ZERO[k])
            i >>= 1
        return MerkleProof(index, n, sibs)


def merkle_root(items: Sequence[bytes]) -> bytes:
    """Root over raw leaf data (each leaf is hashed with the leaf tag first)."""
    return MerkleTree.from_data(items).root()
