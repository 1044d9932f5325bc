"""SQLite block store: blocks, transactions with receipts, state rows and the mempool, in one file.

Why one SQLite file in WAL mode: a block, its receipts and every state row it changed are written in
one transaction, so a crash at any instant leaves either the whole block or none of it; reopening
yields exactly the last committed block. `synchronous=FULL` makes a commit durable across power loss
too, and costs one fsync per block, not per transaction.

The acknowledged-but-unincluded transactions (the mempool) are persisted too, so a node that is
killed never forgets a transaction it has acknowledged.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ailedger.chain.block import HEADER, Block, BlockHeader
from ailedger.chain.genesis import Genesis
from ailedger.chain.receipt import RECEIPT, Receipt
from ailedger.chain.runtime import Built, Runtime
from ailedger.chain.state import State
from ailedger.core import errors
from ailedger.core.errors import LedgerError

SCHEMA_VERSION = 1
DB_NAME = "chain.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (height INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE,
                                   header BLOB NOT NULL, signature BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS txs (id BLOB PRIMARY KEY, height INTEGER NOT NULL, pos INTEGER NOT NULL,
                                raw BLOB NOT NULL, receipt BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS txs_by_block ON txs (height, pos);
CREATE TABLE IF NOT EXISTS state (key BLOB PRIMARY KEY, idx INTEGER NOT NULL UNIQUE, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS mempool (seq INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL UNIQUE,
                                    raw BLOB NOT NULL);
"""


class Store:
    """One chain's data directory. Thread-safe: every call takes the store's lock."""

    def __init__(self, data_dir: Path | str) -> None:
        self.dir = Path(data_dir)
        path = self.dir / DB_NAME
        if not path.exists():
            raise LedgerError(errors.NO_CHAIN, str(self.dir))
        self._db = self._connect(path)
        self.lock = threading.RLock()
        row = self._one("SELECT v FROM meta WHERE k='genesis'")
        if row is None:
            raise LedgerError(errors.STORE_CORRUPT, "no genesis recorded")
        self.genesis = Genesis.parse(row[0])

    @classmethod
    def open(cls, data_dir: Path | str) -> Store:
        """Open the chain in `data_dir`, whichever store holds it."""
        return cls(data_dir)

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        """Run a read under the lock; a damaged database file is store_corrupt, never a raw sqlite error."""
        with self.lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise LedgerError(errors.STORE_CORRUPT, f"{type(exc).__name__}: {exc}") from exc

    def _one(self, sql: str, args: tuple[object, ...] = ()) -> Any:
        rows = self._rows(sql, args)
        return rows[0] if rows else None

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.text_factory = bytes  # a column damaged into TEXT still reads back as bytes, to be judged by its hash
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @classmethod
    def create(cls, data_dir: Path | str, genesis: Genesis, runtime: Runtime) -> Store:
        """Make a new data directory holding the genesis block and state."""
        d = Path(data_dir)
        if (d / DB_NAME).exists():
            raise LedgerError(errors.ALREADY_INIT, str(d))
        d.mkdir(parents=True, exist_ok=True)
        block, state = runtime.genesis_block(genesis)
        tmp = d / (DB_NAME + ".new")
        tmp.unlink(missing_ok=True)
        db = cls._connect(tmp)
        db.executescript(_SCHEMA)
        db.execute("BEGIN")
        db.execute("INSERT INTO meta VALUES ('genesis', ?), ('schema', ?)", (genesis.canonical(), SCHEMA_VERSION))
        db.execute("INSERT INTO blocks VALUES (0, ?, ?, ?)", (block.header.hash, block.header.encode(),
                                                              block.signature))
        db.executemany("INSERT INTO state VALUES (?, ?, ?)", list(state.rows()))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        tmp.replace(d / DB_NAME)  # atomic: a half-made directory never looks like a chain
        for suffix in ("-wal", "-shm"):
            (d / (DB_NAME + ".new" + suffix)).unlink(missing_ok=True)
        return cls(d)

    def close(self) -> None:
        with self.lock:
            self._db.close()

    # -- reads -----------------------------------------------------------------------------------

    def head(self) -> BlockHeader:
        row = self._one("SELECT header FROM blocks ORDER BY height DESC LIMIT 1")
        return HEADER.decode(row[0])

    def height(self) -> int:
        """The highest stored height, read without decoding the header (which may be damaged)."""
        row = self._one("SELECT MAX(height) FROM blocks")
        if row is None or row[0] is None:
            raise LedgerError(errors.STORE_CORRUPT, "no blocks stored")
        return int(row[0])

    def block(self, height: int) -> Block:
        row = self._one("SELECT header, signature FROM blocks WHERE height=?", (height,))
        if row is None:
            raise LedgerError(errors.NOT_FOUND, f"no block at height {height}")
        txs = [r[0] for r in self._rows("SELECT raw FROM txs WHERE height=? ORDER BY pos", (height,))]
        return Block(HEADER.decode(row[0]), row[1], txs)

    def header(self, height: int) -> BlockHeader:
        """One block's header, without reading its transactions."""
        row = self._one("SELECT header FROM blocks WHERE height=?", (height,))
        if row is None:
            raise LedgerError(errors.NOT_FOUND, f"no block at height {height}")
        return HEADER.decode(row[0])

    def block_txs(self, height: int, start: int, limit: int) -> list[tuple[int, bytes, Receipt]]:
        """(position, raw bytes, receipt) of a block's transactions from position `start`, at most `limit`:
        a page of a big block through the (height, pos) index, for readers that show blocks a page at a time."""
        rows = self._rows("SELECT pos, raw, receipt FROM txs WHERE height=? AND pos>=? ORDER BY pos LIMIT ?",
                          (height, start, limit))
        return [(int(r[0]), r[1], RECEIPT.decode(r[2])) for r in rows]

    def block_height(self, block_hash: bytes) -> int:
        row = self._one("SELECT height FROM blocks WHERE hash=?", (block_hash,))
        if row is None:
            raise LedgerError(errors.NOT_FOUND, f"no block with hash {block_hash.hex()}")
        return int(row[0])

    def receipts(self, height: int) -> list[Receipt]:
        rows = self._rows("SELECT receipt FROM txs WHERE height=? ORDER BY pos", (height,))
        return [RECEIPT.decode(r[0]) for r in rows]

    def find_tx(self, tx_id: bytes) -> tuple[int, int, bytes, Receipt] | None:
        """(height, position, raw bytes, receipt) of an included transaction."""
        row = self._one("SELECT height, pos, raw, receipt FROM txs WHERE id=?", (tx_id,))
        if row is None:
            return None
        return int(row[0]), int(row[1]), row[2], RECEIPT.decode(row[3])

    def blocks(self, start: int = 1) -> Iterator[Block]:
        h = start
        top = self.height()
        while h <= top:
            yield self.block(h)
            h += 1

    def load_state(self) -> State:
        rows = self._rows("SELECT key, idx, value FROM state")
        return State(rows)

    # -- writes ----------------------------------------------------------------------------------

    def commit_block(self, built: Built) -> None:
        """Persist a block, its transactions, receipts and state changes all at once (or not at all)."""
        assert built.block is not None
        h = built.block.header
        with self.lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?)", (h.height, h.hash, h.encode(),
                                                                      built.block.signature))
                ids = [tx.id for tx in built.included]
                db.executemany("INSERT INTO txs VALUES (?, ?, ?, ?, ?)",
                               [(i, h.height, pos, tx.raw, r) for pos, (i, tx, r) in
                                enumerate(zip(ids, built.included, built.encoded_receipts(), strict=True))])
                db.executemany("INSERT INTO state VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                               built.changes)
                if db.execute("SELECT 1 FROM mempool LIMIT 1").fetchone():
                    db.executemany("DELETE FROM mempool WHERE id=?", [(i,) for i in ids] +
                                   [(tx.id,) for tx, _ in built.rejected])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def mempool_add(self, tx_id: bytes, raw: bytes) -> None:
        with self.lock:
            self._db.execute("INSERT OR IGNORE INTO mempool (id, raw) VALUES (?, ?)", (tx_id, raw))

    def mempool_remove(self, tx_ids: list[bytes]) -> None:
        with self.lock:
            self._db.executemany("DELETE FROM mempool WHERE id=?", [(i,) for i in tx_ids])

    def mempool(self) -> list[tuple[bytes, bytes]]:
        """Persisted pending transactions as (id, raw bytes), oldest first."""
        return [(r[0], r[1]) for r in self._rows("SELECT id, raw FROM mempool ORDER BY seq")]

