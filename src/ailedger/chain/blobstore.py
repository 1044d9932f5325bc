"""Content-addressed blob store: bulk data off the ledger, named on the ledger by its SHA-256.

Why pack files and not one file per blob: a Datanet contribution is tens of thousands of small
records, and one file each would cost a create, a write and a directory entry per record. Blobs are
appended to a pack file, the pack is fsynced, and only then are their index rows committed (SQLite),
so an index row never points at bytes that are not on disk; a crash can at worst leave unindexed
bytes at a pack's tail, which the next writer skips. Every read re-hashes the bytes, so a damaged
disk is reported (blob_corrupt) instead of silently feeding wrong data to a model.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from ailedger.core import errors
from ailedger.core.errors import LedgerError

PACK_LIMIT = 256 << 20  # start a new pack after this many bytes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (hash BLOB PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL,
                                  length INTEGER NOT NULL) WITHOUT ROWID;
"""


def blob_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class BlobStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.root / "index.sqlite", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _pack_path(self, pack: int) -> Path:
        return self.root / f"pack-{pack:06d}.dat"

    def _current_pack(self) -> int:
        packs = sorted(int(p.stem.split("-")[1]) for p in self.root.glob("pack-*.dat"))
        if not packs:
            return 1
        last = packs[-1]
        return last + 1 if self._pack_path(last).stat().st_size >= PACK_LIMIT else last

    def put_many(self, blobs: Iterable[bytes]) -> list[bytes]:
        """Store blobs (already-stored ones are skipped); returns their hashes in input order."""
        items = [(blob_hash(b), b) for b in blobs]
        with self._lock:
            known = self._known([h for h, _ in items])
            fresh: dict[bytes, bytes] = {}
            for h, b in items:
                if h not in known and h not in fresh:
                    fresh[h] = b
            if fresh:
                pack = self._current_pack()
                rows = []
                with open(self._pack_path(pack), "ab") as f:
                    offset = f.tell()
                    for h, b in fresh.items():
                        f.write(b)
                        rows.append((h, pack, offset, len(b)))
                        offset += len(b)
                    f.flush()
                    os.fsync(f.fileno())
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR IGNORE INTO blobs VALUES (?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
        return [h for h, _ in items]

    def put(self, data: bytes) -> bytes:
        return self.put_many([data])[0]

    def _known(self, hashes: list[bytes]) -> set[bytes]:
        found: set[bytes] = set()
        for i in range(0, len(hashes), 500):
            chunk = hashes[i:i + 500]
            q = f"SELECT hash FROM blobs WHERE hash IN ({','.join('?' * len(chunk))})"
            found.update(r[0] for r in self._db.execute(q, chunk))
        return found

    def has(self, h: bytes) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM blobs WHERE hash=?", (h,)).fetchone() is not None

    def get(self, h: bytes) -> bytes:
        """The blob's bytes, re-hashed: damage is blob_corrupt, absence blob_not_found."""
        with self._lock:
            row = self._db.execute("SELECT pack, offset, length FROM blobs WHERE hash=?", (h,)).fetchone()
        if row is None:
            raise LedgerError(errors.BLOB_NOT_FOUND, h.hex())
        pack, offset, length = row
        try:
            with open(self._pack_path(pack), "rb") as f:
                f.seek(offset)
                data = f.read(length)
        except OSError as exc:
            raise LedgerError(errors.BLOB_CORRUPT, f"{h.hex()}: {exc}") from exc
        if len(data) != length or blob_hash(data) != h:
            raise LedgerError(errors.BLOB_CORRUPT, h.hex())
        return data

    def get_many(self, hashes: Iterable[bytes]) -> Iterator[bytes]:
        for h in hashes:
            yield self.get(h)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0])
