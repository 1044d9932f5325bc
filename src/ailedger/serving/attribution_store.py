"""Where a server keeps the attribution record of every answer it attributed, by receipt id.

Why SQLite and not a dict: a receipt on the ledger names its record only by hash, and the record
must stay fetchable from this server (`GET /v1/attribution/{receipt_id}`) after a restart, so it
lives in a file (`ailedger serve --attribution-db`); tests and throwaway servers use `:memory:`.
The canonical bytes are stored as they were hashed, so what is served back hashes to the receipt's
`attribution` exactly. A failed attribution is stored too (its error code and detail), so the
operator and the caller can tell "failed" from "never attributed".

One connection behind a lock: writes come from the attribution worker thread, reads from the API's
worker threads, and SQLite's own locking is not needed inside one process.

With a postgresql:// URL instead of a file, the records live in PostgreSQL beside a chain kept there
(the same table and statements; several serving processes can then share them).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.serving.attribution_hook import Attributed

MEMORY = ":memory:"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS attributions (
    receipt_id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    adapter_hash TEXT NOT NULL,
    ok INTEGER NOT NULL,
    digest TEXT,
    body BLOB,
    shares TEXT,
    error_code TEXT,
    error_detail TEXT,
    stored_ms INTEGER NOT NULL
)
"""


@dataclass(frozen=True)
class StoredAttribution:
    """One answer's outcome: its record (ok) or why it has none."""

    receipt_id: str
    model: str
    version: int
    adapter_hash: str
    ok: bool
    digest: str | None  # hex
    body: bytes | None  # the canonical record bytes
    shares: list[tuple[str, int]]  # (contributor hex, bp)
    error_code: str | None
    error_detail: str | None

    @property
    def record(self) -> dict[str, Any] | None:
        return None if self.body is None else dict(json.loads(self.body))


class AttributionStore:
    def __init__(self, path: Path | str = MEMORY) -> None:
        self.path = str(path)
        self._pg = self.path.startswith(("postgresql://", "postgres://"))
        self._lock = threading.Lock()
        self._db: Any
        if self._pg:
            from ailedger.chain.pg_store import connect, pg_schema

            self._db = connect(self.path)
            self._db.execute(pg_schema(_SCHEMA))
            return
        if self.path != MEMORY:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        with self._lock:
            if self.path != MEMORY:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return self._db.execute(sql.replace("?", "%s") if self._pg else sql, args)

    def put(self, receipt_id: str, model: str, version: int, adapter_hash: str, found: Attributed) -> None:
        shares = json.dumps([[who.hex(), bp] for who, bp in found.shares])
        self._write(receipt_id, model, version, adapter_hash, 1, found.digest.hex(), found.body, shares, None, None)

    def put_failure(self, receipt_id: str, model: str, version: int, adapter_hash: str, code: str,
                    detail: str) -> None:
        self._write(receipt_id, model, version, adapter_hash, 0, None, None, "[]", code, detail)

    def _write(self, *row: Any) -> None:
        with self._lock:
            self._execute("INSERT INTO attributions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(receipt_id) "
                          "DO UPDATE SET model=excluded.model, version=excluded.version, "
                          "adapter_hash=excluded.adapter_hash, ok=excluded.ok, digest=excluded.digest, "
                          "body=excluded.body, shares=excluded.shares, error_code=excluded.error_code, "
                          "error_detail=excluded.error_detail, stored_ms=excluded.stored_ms",
                          (*row, int(time.time() * 1000)))

    def get(self, receipt_id: str) -> StoredAttribution | None:
        with self._lock:
            row = self._execute("SELECT receipt_id, model, version, adapter_hash, ok, digest, body, shares, "
                                   "error_code, error_detail FROM attributions WHERE receipt_id = ?",
                                   (receipt_id,)).fetchone()
        if row is None:
            return None
        shares = [(str(w), int(bp)) for w, bp in json.loads(row[7] or "[]")]
        return StoredAttribution(row[0], row[1], int(row[2]), row[3], bool(row[4]), row[5],
                                 None if row[6] is None else bytes(row[6]), shares, row[8], row[9])

    def __len__(self) -> int:
        with self._lock:
            return int(self._execute("SELECT COUNT(*) FROM attributions").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
