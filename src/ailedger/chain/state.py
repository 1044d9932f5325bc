"""Ledger state: a key-value map committed to by a Merkle root, with cheap rollback.

Why a flat key-value map: every module (accounts, datanets, market...) keeps its state under its
own key prefix, and one authenticated structure then proves any of it to a light client. Each key
gets a fixed leaf position the first time it is written (new keys of a block are placed in byte
order, so the layout never depends on write order); a deleted key keeps its leaf with an empty
value. Leaf data = u32 len(key) || key || value.

`Journal` gives transaction-level rollback: a failed transaction is undone by `revert` to the
checkpoint taken before it ran, leaving state exactly as it was.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import leaf_hash
from ailedger.core.merkle import MerkleProof, MerkleTree

_U32 = struct.Struct(">I")


def leaf_data(key: bytes, value: bytes) -> bytes:
    return _U32.pack(len(key)) + key + value


class Journal:
    """Reads fall through to `_base_get`; writes are journaled so they can be reverted."""

    def __init__(self) -> None:
        self._writes: dict[bytes, bytes] = {}
        self._journal: list[tuple[bytes, bytes | None]] = []

    def _base_get(self, key: bytes) -> bytes | None:
        raise NotImplementedError

    def get(self, key: bytes) -> bytes | None:
        v = self._writes.get(key)
        if v is None:
            v = self._base_get(key)
        return v or None

    def set(self, key: bytes, value: bytes) -> None:
        """Write a value; an empty value deletes the key."""
        self._journal.append((key, self._writes.get(key)))
        self._writes[key] = value

    def delete(self, key: bytes) -> None:
        self.set(key, b"")

    def checkpoint(self) -> int:
        return len(self._journal)

    def revert(self, checkpoint: int) -> None:
        journal = self._journal
        writes = self._writes
        while len(journal) > checkpoint:
            key, old = journal.pop()
            if old is None:
                del writes[key]
            else:
                writes[key] = old

    def discard(self) -> None:
        """Drop every pending write (a block that failed validation)."""
        self._writes = {}
        self._journal.clear()

    def release(self) -> None:
        """Forget rollback history (after a transaction is final); the writes stay."""
        self._journal.clear()


class Overlay(Journal):
    """Speculative writes on top of another state, discarded or replayed later (used by the mempool)."""

    def __init__(self, base: Journal) -> None:
        super().__init__()
        self._base = base

    def _base_get(self, key: bytes) -> bytes | None:
        return self._base.get(key)


class State(Journal):
    """Committed state plus the pending writes of the block being built, with its Merkle tree."""

    def __init__(self, rows: Iterable[tuple[bytes, int, bytes]] = ()) -> None:
        super().__init__()
        self._committed: dict[bytes, bytes] = {}
        self._index: dict[bytes, int] = {}
        by_index: list[tuple[int, bytes, bytes]] = []
        for key, idx, value in rows:
            self._committed[key] = value
            self._index[key] = idx
            by_index.append((idx, key, value))
        by_index.sort()
        if any(i != pos for pos, (i, _, _) in enumerate(by_index)):
            raise LedgerError(errors.STORE_CORRUPT, "state leaf indices are not contiguous")
        self.tree = MerkleTree(leaf_hash(leaf_data(k, v)) for _, k, v in by_index)
        self._undo: tuple[int, list[tuple[bytes, int, bytes]]] = (len(self.tree), [])

    def _base_get(self, key: bytes) -> bytes | None:
        return self._committed.get(key)

    def __len__(self) -> int:
        return len(self._index)

    def _fold(self) -> list[tuple[bytes, int, bytes]]:
        """Move pending writes into the tree; returns (key, index, value) of each changed leaf."""
        changed: list[tuple[bytes, int, bytes]] = []
        new_keys = []
        self._undo = (len(self.tree), [])
        undo = self._undo[1]
        for key, value in self._writes.items():
            idx = self._index.get(key)
            if idx is None:
                if value:
                    new_keys.append(key)
                continue
            old = self._committed.get(key, b"")
            if old != value:
                undo.append((key, idx, old))
                self._committed[key] = value
                self.tree.set(idx, leaf_hash(leaf_data(key, value)))
                changed.append((key, idx, value))
        for key in sorted(new_keys):
            value = self._writes[key]
            idx = self.tree.append(leaf_hash(leaf_data(key, value)))
            self._index[key] = idx
            self._committed[key] = value
            changed.append((key, idx, value))
        self._writes = {}
        self._journal.clear()
        return changed

    def commit(self) -> tuple[bytes, list[tuple[bytes, int, bytes]]]:
        """Fold pending writes; returns the new state root and the rows a store must persist."""
        changed = self._fold()
        return self.tree.root(), changed

    def undo_commit(self) -> None:
        """Take back the last `commit` (a block whose roots turned out wrong)."""
        size, undo = self._undo
        for key, idx, old in reversed(undo):
            self._committed[key] = old
            self.tree.set(idx, leaf_hash(leaf_data(key, old)))
        for key in [k for k, i in self._index.items() if i >= size]:
            del self._index[key]
            del self._committed[key]
        self.tree.truncate(size)
        self._undo = (size, [])

    def load_rows(self, rows: Iterable[tuple[bytes, int, bytes]]) -> None:
        """Take committed rows written by another process (a shared store's newer blocks) into the tree.

        A row either updates a key at its known index or adds a key at the next free index; a row
        that does neither means this memory and the store disagree (store_corrupt: reload whole).
        """
        if self._writes:
            raise RuntimeError("state has pending writes")
        fresh = []
        for key, idx, value in rows:
            known = self._index.get(key)
            if known is None:
                fresh.append((idx, key, value))
            elif known != idx:
                raise LedgerError(errors.STORE_CORRUPT, f"state key moved from leaf {known} to {idx}")
            else:
                self._committed[key] = value
                self.tree.set(idx, leaf_hash(leaf_data(key, value)))
        for idx, key, value in sorted(fresh):
            if idx != len(self.tree):
                raise LedgerError(errors.STORE_CORRUPT, f"new state leaf {idx} is not the next one ({len(self.tree)})")
            self.tree.append(leaf_hash(leaf_data(key, value)))
            self._index[key] = idx
            self._committed[key] = value
        self._undo = (len(self.tree), [])

    def root(self) -> bytes:
        if self._writes:
            raise RuntimeError("state has pending writes; commit() first")
        return self.tree.root()

    def proof(self, key: bytes) -> tuple[bytes, MerkleProof] | None:
        """The committed value of `key` and its inclusion proof, or None if never written."""
        idx = self._index.get(key)
        if idx is None:
            return None
        return self._committed[key], self.tree.proof(idx)

    def rows(self) -> Iterator[tuple[bytes, int, bytes]]:
        """Every leaf as (key, index, value), deleted keys included: what a store persists."""
        for k, i in self._index.items():
            yield k, i, self._committed[k]

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for k, v in self._committed.items():
            if v:
                yield k, v
