"""The embedded store: a chain's rows in one SQLite file in WAL mode inside the data directory.

Why WAL with `synchronous=FULL`: a commit is durable across power loss and costs one fsync per block,
not per transaction; readers never block the writer. The file is created under a temporary name and
renamed into place, so a half-made directory never looks like a chain.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ailedger.chain.block import Block
from ailedger.chain.genesis import Genesis
from ailedger.chain.store import DB_NAME, SCHEMA, Statement, Store
from ailedger.core import errors
from ailedger.core.errors import LedgerError


class SqliteStore(Store):
    kind = "sqlite"

    def __init__(self, data_dir: Path | str) -> None:
        super().__init__(data_dir)
        path = self.dir / DB_NAME
        if not path.exists():
            raise LedgerError(errors.NO_CHAIN, str(self.dir))
        self._db = self._connect(path)
        self._upgrade()
        self._load_genesis()

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.text_factory = bytes  # a column damaged into TEXT still reads back as bytes, to be judged by its hash
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _upgrade(self) -> None:
        """Schema 1 had no per-row height in `state`; add it (0: changed at or before this upgrade)."""
        try:
            cols = [r[1] for r in self._db.execute("PRAGMA table_info(state)").fetchall()]
            if cols and b"height" not in cols and "height" not in cols:
                self._db.executescript("ALTER TABLE state ADD COLUMN height INTEGER NOT NULL DEFAULT 0;"
                                       "CREATE INDEX IF NOT EXISTS state_by_height ON state (height);")
        except sqlite3.DatabaseError as exc:
            raise LedgerError(errors.STORE_CORRUPT, f"{type(exc).__name__}: {exc}") from exc

    @classmethod
    def create_rows(cls, d: Path, genesis: Genesis, block: Block, state_rows: list[tuple[bytes, int, bytes]]) -> None:
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / (DB_NAME + ".new")
        tmp.unlink(missing_ok=True)
        db = cls._connect(tmp)
        db.executescript(SCHEMA)
        db.execute("BEGIN")
        for sql, rows in Store.genesis_rows(genesis, block, state_rows):
            if isinstance(rows, list):
                db.executemany(sql, rows)
            else:
                db.execute(sql, rows)
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        tmp.replace(d / DB_NAME)  # atomic: a half-made directory never looks like a chain
        for suffix in ("-wal", "-shm"):
            (d / (DB_NAME + ".new" + suffix)).unlink(missing_ok=True)

    def describe(self) -> str:
        return str(self.dir / DB_NAME)

    def close(self) -> None:
        with self.lock:
            self._db.close()

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        with self.lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise LedgerError(errors.STORE_CORRUPT, f"{type(exc).__name__}: {exc}") from exc

    def _transaction(self, statements: Sequence[Statement]) -> None:
        with self.lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in statements:
                    if isinstance(rows, list):
                        db.executemany(sql, rows)
                    else:
                        db.execute(sql, rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
