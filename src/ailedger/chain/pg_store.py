"""The server store: a chain's rows in PostgreSQL (15+) through psycopg 3, shared by many processes.

Why PostgreSQL behind the same SQL: the tables, statements and encodings are those of the SQLite
store (store.py), so both give the same state roots bit for bit and `store migrate` is a row copy.
A block and its state changes are one PostgreSQL transaction, as in SQLite.

Sharing one database between processes (`node run --workers N`) needs two cluster-wide locks, both
PostgreSQL advisory locks, so they vanish with the session of a process that dies:
* the producer lock (`try_lead`): one process at a time seals blocks; the others serve reads and
  admit transactions, and one of them takes over if the producer goes away;
* the admission lock (`serialized`): admitting a transaction (catch up, check against pending ones,
  persist) runs in one process at a time, so the mempool's sequence order is the order in which
  transactions were checked, and a process reading new pending rows never skips one that commits late.

A server that is down or goes away is the coded `store_unavailable`: reads retry for a few seconds
first; a write is never retried blindly (its transaction either committed whole or not at all, and
the node re-reads the store to learn which).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from ailedger.chain.block import Block
from ailedger.chain.genesis import Genesis
from ailedger.chain.store import SCHEMA, Statement, Store
from ailedger.core import errors
from ailedger.core.errors import LedgerError

LEAD_LOCK = 0x61696C6564676572  # "ailedger": the block producer
ADMIT_LOCK = LEAD_LOCK + 1  # transaction admission
READ_RETRY_S = 5.0
CONNECT_TIMEOUT_S = 5


def check_url(url: str) -> None:
    if not re.match(r"^postgres(ql)?://", url):
        raise LedgerError(errors.BAD_STORE_URL, f"{redact(url)}: expected postgresql://USER@HOST:PORT/DB or "
                          "postgresql:///DB?host=/socket/dir")


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def pg_schema(schema: str = SCHEMA) -> str:
    """SQLite DDL in PostgreSQL's spelling (the only differences in the statements both engines run)."""
    return (schema.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
            .replace("INTEGER", "BIGINT").replace("BLOB", "BYTEA"))


def pg_sql(sql: str) -> str:
    return sql.replace("?", "%s")


def connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection to `url`, or store_unavailable naming it (without its password)."""
    check_url(url)
    return _connect(url)


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.OperationalError as exc:
        raise _unavailable(url, exc) from exc


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _run(conn: psycopg.Connection[Any], statements: Sequence[Statement]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        for sql, rows in statements:
            if isinstance(rows, list):
                if rows:
                    cur.executemany(pg_sql(sql), rows)
            else:
                cur.execute(pg_sql(sql), rows)


class PgStore(Store):
    kind = "postgresql"
    shared = True

    def __init__(self, data_dir: Path | str, url: str) -> None:
        super().__init__(data_dir)
        check_url(url)
        self.url = url
        self._db: psycopg.Connection[Any] | None = _connect(url)
        self._lead: psycopg.Connection[Any] | None = None
        self._admit = threading.Lock()
        self._admit_db: psycopg.Connection[Any] | None = None
        if self._one("SELECT to_regclass('meta')")[0] is None:
            raise LedgerError(errors.NO_CHAIN, f"{redact(url)} holds no chain tables (named in {self.dir})")
        self._load_genesis()

    @classmethod
    def create_rows(cls, url: str, genesis: Genesis, block: Block, state_rows: list[tuple[bytes, int, bytes]]) -> None:
        conn = _connect(url)
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LEAD_LOCK,))
                exists = conn.execute("SELECT to_regclass('meta')").fetchone()
                if exists and exists[0] is not None and conn.execute("SELECT 1 FROM meta WHERE k='genesis'").fetchone():
                    raise LedgerError(errors.ALREADY_INIT, f"{redact(url)} already holds a chain")
                conn.execute(pg_schema())
            _run(conn, Store.genesis_rows(genesis, block, state_rows))
        except psycopg.OperationalError as exc:
            raise _unavailable(url, exc) from exc
        finally:
            conn.close()

    def describe(self) -> str:
        return redact(self.url)

    def close(self) -> None:
        with self.lock:
            for conn in (self._db, self._lead, self._admit_db):
                if conn is not None:
                    conn.close()
            self._db = self._lead = self._admit_db = None

    # -- engine ----------------------------------------------------------------------------------

    def _conn(self) -> psycopg.Connection[Any]:
        if self._db is None or self._db.closed:
            self._db = _connect(self.url)
        return self._db

    def _drop(self) -> None:
        if self._db is not None:
            self._db.close()
        self._db = None

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        deadline = time.monotonic() + READ_RETRY_S
        with self.lock:
            while True:
                try:
                    return self._conn().execute(pg_sql(sql), args).fetchall()
                except (psycopg.OperationalError, LedgerError) as exc:
                    if isinstance(exc, LedgerError) and exc.code is not errors.STORE_UNAVAILABLE:
                        raise
                    self._drop()
                    if time.monotonic() >= deadline:
                        raise _unavailable(self.url, exc) from exc
                    time.sleep(0.2)
                except psycopg.DatabaseError as exc:
                    raise LedgerError(errors.STORE_CORRUPT, f"{type(exc).__name__}: {_first_line(exc)}") from exc

    def _transaction(self, statements: Sequence[Statement]) -> None:
        with self.lock:
            try:
                _run(self._conn(), statements)
            except psycopg.OperationalError as exc:
                self._drop()
                raise _unavailable(self.url, exc) from exc
            except psycopg.errors.UniqueViolation as exc:
                raise LedgerError(errors.STORE_CONFLICT, _first_line(exc)) from exc
            except psycopg.DatabaseError as exc:
                raise LedgerError(errors.STORE_CORRUPT, f"{type(exc).__name__}: {_first_line(exc)}") from exc

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One REPEATABLE READ transaction: a block another process commits meanwhile is all or nothing in it."""
        with self.lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            except psycopg.OperationalError as exc:
                self._drop()
                raise _unavailable(self.url, exc) from exc
            try:
                yield
            finally:
                if self._db is not None and not self._db.closed:
                    try:
                        self._db.execute("COMMIT")
                    except psycopg.OperationalError:
                        self._drop()

    # -- sharing the database between processes ----------------------------------------------------

    def try_lead(self) -> bool:
        """Hold (or keep holding) the cluster-wide producer lock; False while another process holds it.

        The lock lives as long as its connection: a server that went away took it along, so that is
        store_unavailable (and the lock is asked for afresh next time), never a silent False.
        """
        with self.lock:
            try:
                if self._lead is not None and not self._lead.closed:
                    self._lead.execute("SELECT 1")
                    return True
                self._lead = _connect(self.url)
                row = self._lead.execute("SELECT pg_try_advisory_lock(%s)", (LEAD_LOCK,)).fetchone()
                if row is not None and row[0]:
                    return True
                failure: BaseException | None = None
            except (psycopg.OperationalError, LedgerError) as exc:
                failure = exc
            if self._lead is not None:
                self._lead.close()
            self._lead = None
            if failure is not None:
                raise _unavailable(self.url, failure) from failure
            return False

    @contextmanager
    def serialized(self) -> Iterator[None]:
        """Run the block as the only admitter across every process sharing this database."""
        with self._admit:
            try:
                if self._admit_db is None or self._admit_db.closed:
                    self._admit_db = _connect(self.url)
                self._admit_db.execute("BEGIN")
                self._admit_db.execute("SELECT pg_advisory_xact_lock(%s)", (ADMIT_LOCK,))
            except psycopg.OperationalError as exc:
                if self._admit_db is not None:
                    self._admit_db.close()
                self._admit_db = None
                raise _unavailable(self.url, exc) from exc
            try:
                yield
            finally:
                try:
                    self._admit_db.execute("COMMIT")
                except psycopg.OperationalError:
                    self._admit_db.close()
                    self._admit_db = None


def _unavailable(url: str, exc: BaseException) -> LedgerError:
    if isinstance(exc, LedgerError):
        return exc
    return LedgerError(errors.STORE_UNAVAILABLE, f"{redact(url)}: {_first_line(exc)}")
