"""The block store: blocks, transactions with receipts, state rows and the mempool, behind one interface.

Two engines hold a chain, with the same tables, the same SQL and the same roots bit for bit:
* SQLite (`sqlite_store.py`), the embedded default: one file in the data directory.
* PostgreSQL (`pg_store.py`), for many API processes over one database: the data directory then
  holds `store.json` naming the server, and the chain's rows live there.

Why one base class: every read and the block commit are the same statements on both engines, so
they are written once here; an engine supplies only how to connect, run a statement, and run a list
of statements as one transaction. A block, its receipts and every state row it changed are written
in one transaction, so a crash at any instant leaves either the whole block or none of it.

Each state row records the height that last changed it, so a process sharing the database with the
block producer can catch up on a new block by reading only the rows it changed (`state_since`).

The acknowledged-but-unincluded transactions (the mempool) are persisted too, so a node that is
killed never forgets a transaction it has acknowledged.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ailedger.chain.block import HEADER, Block, BlockHeader
from ailedger.chain.genesis import Genesis
from ailedger.chain.receipt import RECEIPT, Receipt
from ailedger.chain.runtime import Built, Runtime
from ailedger.chain.state import State
from ailedger.core import errors
from ailedger.core.errors import LedgerError

SCHEMA_VERSION = 2
DB_NAME = "chain.sqlite"
STORE_FILE = "store.json"  # present when the chain's rows live in a server database

# Written for SQLite; an engine rewrites the few type names it spells differently (`_schema`).
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (height INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE,
                                   header BLOB NOT NULL, signature BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS txs (id BLOB PRIMARY KEY, height INTEGER NOT NULL, pos INTEGER NOT NULL,
                                raw BLOB NOT NULL, receipt BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS txs_by_block ON txs (height, pos);
CREATE TABLE IF NOT EXISTS state (key BLOB PRIMARY KEY, idx INTEGER NOT NULL UNIQUE, value BLOB NOT NULL,
                                  height INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS state_by_height ON state (height);
CREATE TABLE IF NOT EXISTS mempool (seq INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL UNIQUE,
                                    raw BLOB NOT NULL);
"""

# One statement of a transaction: (sql, rows); rows is one argument tuple, or a list of them (executemany).
Statement = tuple[str, tuple[object, ...] | list[tuple[object, ...]]]


class Store:
    """One chain's rows. Thread-safe: every call takes the store's lock."""

    kind = "?"
    shared = False  # True when other processes may write the same database (a server store)

    def __init__(self, data_dir: Path | str) -> None:
        self.dir = Path(data_dir)
        self.lock = threading.RLock()
        self.genesis: Genesis

    def _load_genesis(self) -> None:
        row = self._one("SELECT v FROM meta WHERE k='genesis'")
        if row is None:
            raise LedgerError(errors.STORE_CORRUPT, "no genesis recorded")
        self.genesis = Genesis.parse(bytes(row[0]))

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, data_dir: Path | str) -> Store:
        """Open the chain in `data_dir`, whichever engine holds it."""
        d = Path(data_dir)
        url = store_url(d)
        if url is not None:
            from ailedger.chain.pg_store import PgStore

            return PgStore(d, url)
        from ailedger.chain.sqlite_store import SqliteStore

        return SqliteStore(d)

    @classmethod
    def create(cls, data_dir: Path | str, genesis: Genesis, runtime: Runtime, url: str | None = None) -> Store:
        """Make a new chain holding the genesis block and state: in `data_dir`, or in the database at `url`.

        With a `url` the data directory keeps `store.json` naming the database (and, as always, its
        blobs and keys), so every command that opens the directory finds the chain's rows.
        """
        d = Path(data_dir)
        if is_chain_dir(d):
            raise LedgerError(errors.ALREADY_INIT, str(d))
        if url is None or url.startswith("sqlite:"):
            return cls.create_at(f"sqlite:{d}", d, genesis, runtime)
        store = cls.create_at(url, d, genesis, runtime)
        d.mkdir(parents=True, exist_ok=True)
        set_store_url(d, url)
        return store

    @staticmethod
    def create_at(where: str, data_dir: Path, genesis: Genesis, runtime: Runtime) -> Store:
        """Write a new chain's genesis rows at `where` (sqlite:DIR, or postgresql://... for a server store whose
        blobs and keys stay in `data_dir`) and open it; no data directory is pointed at it (`store migrate`'s
        target until --switch)."""
        block, state = runtime.genesis_block(genesis)
        rows = list(state.rows())
        if where.startswith("sqlite:"):
            from ailedger.chain.sqlite_store import SqliteStore

            d = Path(where.removeprefix("sqlite:"))
            if (d / DB_NAME).exists():
                raise LedgerError(errors.ALREADY_INIT, str(d))
            SqliteStore.create_rows(d, genesis, block, rows)
            return SqliteStore(d)
        from ailedger.chain.pg_store import PgStore, check_url

        check_url(where)
        PgStore.create_rows(where, genesis, block, rows)
        return PgStore(data_dir, where)

    @staticmethod
    def genesis_rows(genesis: Genesis, block: Block, state_rows: list[tuple[bytes, int, bytes]]) -> list[Statement]:
        """The statements that write a new chain's meta, block 0 and genesis state."""
        h = block.header
        return [("INSERT INTO meta VALUES ('genesis', ?), ('schema', ?)",
                 (genesis.canonical(), str(SCHEMA_VERSION).encode())),
                ("INSERT INTO blocks VALUES (0, ?, ?, ?)", (h.hash, h.encode(), block.signature)),
                ("INSERT INTO state (key, idx, value, height) VALUES (?, ?, ?, 0)", list(state_rows))]

    # -- engine --------------------------------------------------------------------------------------

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        """Run one read under the lock; engine failures become coded errors, never raw driver errors."""
        raise NotImplementedError

    def _transaction(self, statements: Sequence[Statement]) -> None:
        """Run the statements as one transaction: all of them, or (on any failure) none."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """Where the rows are, for messages (never a password)."""
        raise NotImplementedError

    def try_lead(self) -> bool:
        """Hold the right to seal blocks; a store no other process writes always grants it."""
        return True

    @contextmanager
    def serialized(self) -> Iterator[None]:
        """Run the block as the only transaction admitter among the processes sharing the store."""
        yield

    def _one(self, sql: str, args: tuple[object, ...] = ()) -> Any:
        rows = self._rows(sql, args)
        return rows[0] if rows else None

    # -- reads -----------------------------------------------------------------------------------

    def head(self) -> BlockHeader:
        row = self._one("SELECT header FROM blocks ORDER BY height DESC LIMIT 1")
        if row is None:
            raise LedgerError(errors.STORE_CORRUPT, "no blocks stored")
        return HEADER.decode(bytes(row[0]))

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
        txs = [bytes(r[0]) for r in self._rows("SELECT raw FROM txs WHERE height=? ORDER BY pos", (height,))]
        return Block(HEADER.decode(bytes(row[0])), bytes(row[1]), txs)

    def header(self, height: int) -> BlockHeader:
        """One block's header, without reading its transactions."""
        row = self._one("SELECT header FROM blocks WHERE height=?", (height,))
        if row is None:
            raise LedgerError(errors.NOT_FOUND, f"no block at height {height}")
        return HEADER.decode(bytes(row[0]))

    def block_txs(self, height: int, start: int, limit: int) -> list[tuple[int, bytes, Receipt]]:
        """(position, raw bytes, receipt) of a block's transactions from position `start`, at most `limit`:
        a page of a big block through the (height, pos) index, for readers that show blocks a page at a time."""
        rows = self._rows("SELECT pos, raw, receipt FROM txs WHERE height=? AND pos>=? ORDER BY pos LIMIT ?",
                          (height, start, limit))
        return [(int(r[0]), bytes(r[1]), RECEIPT.decode(bytes(r[2]))) for r in rows]

    def block_height(self, block_hash: bytes) -> int:
        row = self._one("SELECT height FROM blocks WHERE hash=?", (block_hash,))
        if row is None:
            raise LedgerError(errors.NOT_FOUND, f"no block with hash {block_hash.hex()}")
        return int(row[0])

    def receipts(self, height: int) -> list[Receipt]:
        rows = self._rows("SELECT receipt FROM txs WHERE height=? ORDER BY pos", (height,))
        return [RECEIPT.decode(bytes(r[0])) for r in rows]

    def find_tx(self, tx_id: bytes) -> tuple[int, int, bytes, Receipt] | None:
        """(height, position, raw bytes, receipt) of an included transaction."""
        row = self._one("SELECT height, pos, raw, receipt FROM txs WHERE id=?", (tx_id,))
        if row is None:
            return None
        return int(row[0]), int(row[1]), bytes(row[2]), RECEIPT.decode(bytes(row[3]))

    def blocks(self, start: int = 1) -> Iterator[Block]:
        h = start
        top = self.height()
        while h <= top:
            yield self.block(h)
            h += 1

    def load_state(self) -> State:
        rows = self._rows("SELECT key, idx, value FROM state")
        return State((bytes(k), int(i), bytes(v)) for k, i, v in rows)

    def state_since(self, height: int) -> list[tuple[bytes, int, bytes]]:
        """(key, index, value) of every state row changed by a block above `height`."""
        rows = self._rows("SELECT key, idx, value FROM state WHERE height>?", (height,))
        return [(bytes(k), int(i), bytes(v)) for k, i, v in rows]

    def catch_up(self, height: int) -> tuple[BlockHeader, list[tuple[bytes, int, bytes]], list[bytes]]:
        """(head, state rows changed above `height`, ids of transactions included above it), read at one instant."""
        with self.snapshot():
            head = self.head()
            return head, self.state_since(height), self.tx_ids_since(height)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Make the reads inside the block see one instant of the store (no other writer: already so)."""
        with self.lock:
            yield

    def tx_ids_since(self, height: int) -> list[bytes]:
        """Ids of the transactions included in blocks above `height`."""
        return [bytes(r[0]) for r in self._rows("SELECT id FROM txs WHERE height>?", (height,))]

    # -- writes ----------------------------------------------------------------------------------

    def commit_block(self, built: Built) -> None:
        """Persist a block, its transactions, receipts and state changes all at once (or not at all)."""
        assert built.block is not None
        h = built.block.header
        ids = [tx.id for tx in built.included]
        statements: list[Statement] = [
            ("INSERT INTO blocks VALUES (?, ?, ?, ?)", (h.height, h.hash, h.encode(), built.block.signature))]
        if ids:
            statements.append(("INSERT INTO txs VALUES (?, ?, ?, ?, ?)",
                               [(i, h.height, pos, tx.raw, r) for pos, (i, tx, r) in
                                enumerate(zip(ids, built.included, built.encoded_receipts(), strict=True))]))
        if built.changes:
            statements.append(("INSERT INTO state (key, idx, value, height) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT(key) DO UPDATE SET value=excluded.value, height=excluded.height",
                               [(k, i, v, h.height) for k, i, v in built.changes]))
        gone = ids + [tx.id for tx, _ in built.rejected]
        if gone:
            statements.append(("DELETE FROM mempool WHERE id=?", [(i,) for i in gone]))
        self._transaction(statements)

    def mempool_add(self, tx_id: bytes, raw: bytes) -> None:
        self._transaction([("INSERT INTO mempool (id, raw) VALUES (?, ?) ON CONFLICT DO NOTHING", (tx_id, raw))])

    def mempool_remove(self, tx_ids: list[bytes]) -> None:
        if tx_ids:
            self._transaction([("DELETE FROM mempool WHERE id=?", [(i,) for i in tx_ids])])

    def mempool(self) -> list[tuple[bytes, bytes]]:
        """Persisted pending transactions as (id, raw bytes), oldest first."""
        return [(tx_id, raw) for _, tx_id, raw in self.mempool_since(0)]

    def mempool_since(self, seq: int) -> list[tuple[int, bytes, bytes]]:
        """(sequence, id, raw bytes) of the pending transactions persisted after `seq`, oldest first."""
        rows = self._rows("SELECT seq, id, raw FROM mempool WHERE seq>? ORDER BY seq", (seq,))
        return [(int(s), bytes(i), bytes(r)) for s, i, r in rows]

    def tips(self) -> tuple[int, int]:
        """(head height, newest mempool sequence): what a process sharing the database compares to catch up."""
        row = self._one("SELECT (SELECT MAX(height) FROM blocks), (SELECT COALESCE(MAX(seq), 0) FROM mempool)")
        return int(row[0]), int(row[1])


# -- the data directory's pointer to a server database ----------------------------------------------

def store_url(data_dir: Path) -> str | None:
    """The database URL in `data_dir/store.json`, or None when the chain is the directory's SQLite file."""
    path = data_dir / STORE_FILE
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
        url = doc["store"]
        if not isinstance(url, str) or not url:
            raise ValueError("store must be a non-empty URL")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LedgerError(errors.STORE_CORRUPT, f"{path}: {exc}") from exc
    return url


def set_store_url(data_dir: Path, url: str) -> None:
    """Point `data_dir` at the database `url` (its `store.json`, written whole or not at all)."""
    from ailedger.chain.files import atomic_write

    with atomic_write(data_dir / STORE_FILE) as f:
        f.write((json.dumps({"store": url}, indent=2) + "\n").encode())


def is_chain_dir(data_dir: Path) -> bool:
    """True when `data_dir` already holds (or points at) a chain."""
    return (data_dir / DB_NAME).exists() or (data_dir / STORE_FILE).exists()


def attach(data_dir: Path, url: str) -> None:
    """Point a data directory at a chain already in the database at `url` (another machine's API process).

    Several processes, each with its own data directory (keys, blobs), can serve one chain kept in
    PostgreSQL. A directory holding a chain of its own, or already pointing at another database, is
    refused; attaching to the URL it already names changes nothing.
    """
    current = store_url(data_dir)
    if current == url:
        return
    if current is not None or (data_dir / DB_NAME).exists():
        raise LedgerError(errors.ALREADY_INIT, f"{data_dir} already holds a chain ({current or DB_NAME}); "
                          "attach a fresh directory")
    from ailedger.chain.pg_store import PgStore

    PgStore(data_dir, url).close()  # the database must hold a chain (no_chain, store_unavailable otherwise)
    data_dir.mkdir(parents=True, exist_ok=True)
    set_store_url(data_dir, url)
