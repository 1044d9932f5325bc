"""The explorer's history index: what the ledger state forgets, kept in indexed tables.

Why a separate index: the state is the present (a balance, a reputation, a receipt by id), but the
explorer shows the past too (transactions per block, fees paid to data contributors per block, an
account's reputation after every block that changed it, every record a Datanet ever saw, calls per
model). The blocks imply all of it, so the index replays them through the runtime, exactly as
`chain verify` does, and reads each block's state changes (`Built.changes`) as it goes. Each page
then asks one indexed query (a primary-key range, newest or oldest first, from a keyset cursor), so
page time does not grow with the chain; only the catch-up after new blocks costs, once per block.

The index lives in memory (SQLite `:memory:`): it is rebuilt by one replay when the explorer starts
and followed block by block afterwards. It is a cache of what the blocks say, never a source of truth.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ailedger.billing.state import RECEIPT as STORED_RECEIPT
from ailedger.chain.block import BlockHeader
from ailedger.chain.runtime import Built, Runtime
from ailedger.chain.state import State
from ailedger.chain.tx import Tx, decode_tx
from ailedger.chain.views import decoded_payload
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.reputation import module as reputation
from ailedger.settlement.state import LINE, Role

_log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ailedger.web.source import BlockSource
_REC = b"dn/rec/"
_RECEIPT = b"bil/rc/"
_LINE = b"stl/line/"

_SCHEMA = """
CREATE TABLE blocks (height INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, txs INTEGER NOT NULL,
                     failed INTEGER NOT NULL, fees INTEGER NOT NULL, data_paid INTEGER NOT NULL, hash BLOB NOT NULL);
CREATE UNIQUE INDEX blocks_by_hash ON blocks (hash);
CREATE TABLE account_txs (address BLOB NOT NULL, height INTEGER NOT NULL, pos INTEGER NOT NULL,
                          PRIMARY KEY (address, height, pos)) WITHOUT ROWID;
CREATE TABLE reputation (address BLOB NOT NULL, role INTEGER NOT NULL, height INTEGER NOT NULL,
                         score_bps INTEGER NOT NULL, PRIMARY KEY (address, role, height)) WITHOUT ROWID;
CREATE TABLE records (datanet TEXT NOT NULL, n INTEGER NOT NULL, hash BLOB NOT NULL, height INTEGER NOT NULL,
                      PRIMARY KEY (datanet, n)) WITHOUT ROWID;
CREATE UNIQUE INDEX records_by_hash ON records (hash, datanet);
CREATE TABLE model_calls (model TEXT NOT NULL, height INTEGER NOT NULL, calls INTEGER NOT NULL,
                          fees INTEGER NOT NULL, PRIMARY KEY (model, height)) WITHOUT ROWID;
CREATE TABLE models (model TEXT PRIMARY KEY, calls INTEGER NOT NULL, fees INTEGER NOT NULL);
CREATE INDEX models_by_fees ON models (fees DESC, model);
CREATE TABLE earnings (address BLOB NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, amount INTEGER NOT NULL,
                       held INTEGER NOT NULL, forfeited INTEGER NOT NULL, count INTEGER NOT NULL,
                       PRIMARY KEY (address, kind, name)) WITHOUT ROWID;
CREATE TABLE datanets (datanet TEXT PRIMARY KEY, records INTEGER NOT NULL, data_paid INTEGER NOT NULL);
CREATE INDEX datanets_by_paid ON datanets (data_paid DESC, records DESC, datanet);
"""


@dataclass(frozen=True)
class BlockRow:
    height: int
    time_ms: int
    txs: int
    failed: int
    fees: int
    data_paid: int


def tx_addresses(runtime: Runtime, tx: Tx) -> set[bytes]:
    """The sender and every account address the decoded payload names (a transfer's recipient, a voter...)."""
    found = {tx.sender_address}
    stack: list[Any] = [decoded_payload(runtime, tx)]
    while stack:
        item = stack.pop()
        if isinstance(item, bytes) and len(item) == 20:
            found.add(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


class History:
    """Follows one store's blocks into indexed tables; `catch_up` before reading."""

    def __init__(self, store: BlockSource, runtime: Runtime) -> None:
        self.store = store
        self.runtime = runtime
        self.lock = threading.RLock()
        self.db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self.db.executescript(_SCHEMA)
        block0, self._state = runtime.genesis_block(store.genesis)
        self._parent: BlockHeader = block0.header
        self._records: dict[str, int] = {}

        self.stopped: str | None = None  # why indexing stopped (a block this runtime cannot replay)

    @property
    def height(self) -> int:
        return self._parent.height

    def catch_up(self) -> int:
        """Replay the blocks stored since the last call; returns the indexed height.

        A block that does not replay (a chain written by other rules than this runtime's, or a damaged
        store) stops the index there, with the reason in `stopped`: the pages still show the present
        state and say that their history ends early, rather than failing.
        """
        with self.lock:
            top = self.store.height()
            while self._parent.height < top and self.stopped is None:
                block = self.store.block(self._parent.height + 1)
                try:
                    built = self.runtime.validate_block(self._state, self._parent, block)
                except LedgerError as exc:
                    self.stopped = f"block {self._parent.height + 1} does not replay: {exc.detail or exc.code.message}"
                    _log.warning("explorer history stops at block %d: %s", self._parent.height, self.stopped)
                    break
                self.db.execute("BEGIN")
                try:
                    self._index(built)
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                self._parent = block.header
            return self._parent.height

    # -- one block -------------------------------------------------------------------------------

    def _index(self, built: Built) -> None:
        assert built.block is not None
        header = built.block.header
        h = header.height
        rows = []
        for pos, tx in enumerate(decode_tx(raw) for raw in built.block.txs):
            rows += [(a, h, pos) for a in tx_addresses(self.runtime, tx)]
        self.db.executemany("INSERT OR IGNORE INTO account_txs VALUES (?, ?, ?)", rows)
        data_paid = 0
        for key, _idx, value in built.changes:
            if key.startswith(reputation.PREFIX) and len(key) == len(reputation.PREFIX) + 21:
                role, address = key[len(reputation.PREFIX)], key[len(reputation.PREFIX) + 1:]
                score = reputation.score_bps(self._state, address, role, h)
                self.db.execute("INSERT OR REPLACE INTO reputation VALUES (?, ?, ?, ?)", (address, role, h, score))
            elif key.startswith(_REC) and len(key) > len(_REC) + 33:
                self._record(key[len(_REC):-33].decode(), key[-32:], h)
            elif key.startswith(_RECEIPT) and value:
                self._receipt(value, h)
            elif key.startswith(_LINE) and value:
                data_paid += self._line(key[len(_LINE):len(_LINE) + 20], value)
        fees = sum(r.fee for r in built.receipts)
        failed = sum(1 for r in built.receipts if r.code)
        self.db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (h, header.timestamp_ms, len(built.block.txs), failed, fees, data_paid, header.hash))

    def _record(self, datanet: str, record_hash: bytes, height: int) -> None:
        if datanet not in self._records:
            row = self.db.execute("SELECT COALESCE(MAX(n) + 1, 0) FROM records WHERE datanet=?", (datanet,)).fetchone()
            self._records[datanet] = int(row[0])
        cur = self.db.execute("INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?)",
                              (datanet, self._records[datanet], record_hash, height))
        if cur.rowcount:
            self._records[datanet] += 1
            self.db.execute("INSERT INTO datanets VALUES (?, 1, 0) ON CONFLICT(datanet) DO UPDATE SET "
                            "records = records + 1", (datanet,))

    def _receipt(self, value: bytes, height: int) -> None:
        r = STORED_RECEIPT.decode(value)
        if r.height != height:  # an old receipt rewritten (settled): counted when it was stored
            return
        model = f"{r.model}@{r.version}"
        self.db.execute("INSERT INTO model_calls VALUES (?, ?, 1, ?) ON CONFLICT(model, height) DO UPDATE SET "
                        "calls = calls + 1, fees = fees + excluded.fees", (model, height, r.charged))
        self.db.execute("INSERT INTO models VALUES (?, 1, ?) ON CONFLICT(model) DO UPDATE SET "
                        "calls = calls + 1, fees = fees + excluded.fees", (model, r.charged))

    def _line(self, address: bytes, value: bytes) -> int:
        """One settlement line (an address's earnings of one block): its totals, and what went to data."""
        paid = 0
        for e in LINE.decode(value).entries:
            model = f"{e.model}@{e.version}" if e.model else ""
            for kind, name in (("datanet", e.datanet), ("model", model)):
                self.db.execute("INSERT INTO earnings VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(address, kind, name) "
                                "DO UPDATE SET amount = amount + excluded.amount, held = held + excluded.held, "
                                "forfeited = forfeited + excluded.forfeited, count = count + excluded.count",
                                (address, kind, name, e.amount, e.held, e.forfeited, e.count))
            if e.role == Role.DATA:
                paid += e.amount + e.held
                self.db.execute("INSERT INTO datanets VALUES (?, 0, ?) ON CONFLICT(datanet) DO UPDATE SET "
                                "data_paid = data_paid + excluded.data_paid", (e.datanet, e.amount + e.held))
        return paid

    # -- reads (each one indexed range) ---------------------------------------------------------

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        self.catch_up()
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def blocks(self, before: int | None, limit: int) -> list[BlockRow]:
        """Newest first, heights below `before` (the keyset cursor)."""
        top = before if before is not None else 1 << 62
        return [BlockRow(*r) for r in self._rows(
            "SELECT height, time_ms, txs, failed, fees, data_paid FROM blocks WHERE height < ? "
            "ORDER BY height DESC LIMIT ?", (top, limit))]

    def block_height(self, block_hash: bytes) -> int:
        """The height of the indexed block with that hash (a remote node has no such look-up)."""
        rows = self._rows("SELECT height FROM blocks WHERE hash=?", (block_hash,))
        if not rows:
            raise LedgerError(errors.NOT_FOUND, f"no block with hash {block_hash.hex()}")
        return int(rows[0][0])

    def account_txs(self, address: bytes, before: tuple[int, int] | None, limit: int) -> list[tuple[int, int]]:
        """(height, position) of the transactions naming `address`, newest first, before the cursor."""
        h, p = before if before is not None else (1 << 62, 0)
        return [(int(a), int(b)) for a, b in self._rows(
            "SELECT height, pos FROM account_txs WHERE address=? AND (height, pos) < (?, ?) "
            "ORDER BY height DESC, pos DESC LIMIT ?", (address, h, p, limit))]

    def reputation(self, address: bytes, role: int, limit: int = 500) -> list[tuple[int, int]]:
        """(height, score in basis points) after each of the latest `limit` blocks that changed it, oldest first."""
        rows = self._rows("SELECT height, score_bps FROM reputation WHERE address=? AND role=? "
                          "ORDER BY height DESC LIMIT ?", (address, role, limit))
        return [(int(a), int(b)) for a, b in reversed(rows)]

    def reputation_roles(self, address: bytes) -> list[int]:
        return [int(r[0]) for r in self._rows(
            "SELECT DISTINCT role FROM reputation WHERE address=? ORDER BY role", (address,))]

    def records(self, datanet: str, after: int, limit: int) -> list[tuple[int, bytes, int]]:
        """(n, record hash, height first seen) in the order the Datanet first saw them, after cursor `after`."""
        return [(int(n), bytes(h), int(ht)) for n, h, ht in self._rows(
            "SELECT n, hash, height FROM records WHERE datanet=? AND n > ? ORDER BY n LIMIT ?",
            (datanet, after, limit))]

    def record_datanet(self, record_hash: bytes) -> str | None:
        row = self._rows("SELECT datanet FROM records WHERE hash=? LIMIT 1", (record_hash,))
        return str(row[0][0]) if row else None

    def model_calls(self, model: str, limit: int = 500) -> list[tuple[int, int, int]]:
        """(height, calls, fees) of the latest `limit` blocks with calls to `model` (name@version), oldest first."""
        rows = self._rows("SELECT height, calls, fees FROM model_calls WHERE model=? ORDER BY height DESC LIMIT ?",
                          (model, limit))
        return [(int(a), int(b), int(c)) for a, b, c in reversed(rows)]

    def earnings(self, address: bytes, kind: str, limit: int = 100) -> dict[str, dict[str, int]]:
        """An address's lifetime earnings per Datanet (`kind` "datanet") or per model ("model"), by name."""
        return {str(r[0]): {"amount": int(r[1]), "held": int(r[2]), "forfeited": int(r[3]), "count": int(r[4])}
                for r in self._rows("SELECT name, amount, held, forfeited, count FROM earnings "
                                    "WHERE address=? AND kind=? ORDER BY name LIMIT ?", (address, kind, limit))}

    def top_models(self, limit: int) -> list[tuple[str, int, int]]:
        return [(str(m), int(c), int(f)) for m, c, f in self._rows(
            "SELECT model, calls, fees FROM models ORDER BY fees DESC, model LIMIT ?", (limit,))]

    def top_datanets(self, limit: int) -> list[tuple[str, int, int]]:
        return [(str(d), int(r), int(p)) for d, r, p in self._rows(
            "SELECT datanet, records, data_paid FROM datanets ORDER BY data_paid DESC, records DESC, datanet "
            "LIMIT ?", (limit,))]

    def state(self) -> State:
        """The replayed state at the indexed height (read under `lock`)."""
        return self._state


__all__ = ["BlockRow", "History", "tx_addresses"]
