"""`store migrate`: copy a chain from one store to another, then prove the copy equal by its roots.

Why a row copy and then a proof, rather than a replay: the copy is fast (no signatures, no module
code), and the proof does not trust it: every copied block's header must be byte-identical, the
transactions and receipts read back from the target must give the header's transaction and receipt
roots, the blocks must chain by parent hash, and the target's state rows must give the head's state
root. Anything else is `migrate_mismatch`, and the target is left for inspection.

Rows move in batches of blocks, each batch one transaction, so an interrupted copy leaves the
target holding whole blocks only; migrating again starts over on a fresh target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ailedger.chain.block import HEADER
from ailedger.chain.store import Statement, Store
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.merkle import merkle_root

BATCH_BLOCKS = 200
STATE_CHUNK = 20_000

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class MigrateReport:
    source: str
    target: str
    blocks: int
    txs: int
    state_rows: int
    pending: int
    head_hash: str
    state_root: str

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def migrate(src: Store, dst: Store, progress: Progress | None = None) -> MigrateReport:
    """Copy every block, transaction, state row and pending transaction of `src` into `dst` (genesis only)."""
    if dst.height() != 0:
        raise LedgerError(errors.ALREADY_INIT, f"{dst.describe()} already holds blocks above genesis")
    if dst.header(0).hash != src.header(0).hash:
        raise LedgerError(errors.MIGRATE_MISMATCH, "the target's genesis block differs from the source's")
    top = src.height()
    txs = 0
    for start in range(1, top + 1, BATCH_BLOCKS):
        end = min(top, start + BATCH_BLOCKS - 1)
        blocks = src._rows("SELECT height, hash, header, signature FROM blocks WHERE height BETWEEN ? AND ? "
                           "ORDER BY height", (start, end))
        rows = src._rows("SELECT id, height, pos, raw, receipt FROM txs WHERE height BETWEEN ? AND ? "
                         "ORDER BY height, pos", (start, end))
        txs += len(rows)
        statements: list[Statement] = [("INSERT INTO blocks VALUES (?, ?, ?, ?)",
                                        [tuple(map(_plain, b)) for b in blocks])]
        if rows:
            statements.append(("INSERT INTO txs VALUES (?, ?, ?, ?, ?)", [tuple(map(_plain, r)) for r in rows]))
        dst._transaction(statements)
        if progress:
            progress("blocks", end, top)
    state = src._rows("SELECT key, idx, value, height FROM state ORDER BY idx")
    statements = [("DELETE FROM state", ())]
    for i in range(0, len(state), STATE_CHUNK):
        statements.append(("INSERT INTO state (key, idx, value, height) VALUES (?, ?, ?, ?)",
                           [tuple(map(_plain, r)) for r in state[i:i + STATE_CHUNK]]))
    pending = src.mempool()
    if pending:
        statements.append(("INSERT INTO mempool (id, raw) VALUES (?, ?)", list(pending)))
    dst._transaction(statements)  # state and mempool swap in whole: the head's state, never genesis mixed in
    if progress:
        progress("state", len(state), len(state))
    head, root = prove_equal(src, dst, progress)
    return MigrateReport(src.describe(), dst.describe(), top, txs, len(state), len(pending), head, root)


def prove_equal(src: Store, dst: Store, progress: Progress | None = None) -> tuple[str, str]:
    """Check `dst` against `src` by roots; returns (head hash, state root) hex, or raises migrate_mismatch."""
    top = src.height()
    if dst.height() != top:
        raise LedgerError(errors.MIGRATE_MISMATCH, f"target height {dst.height()}, source {top}")
    parent = None
    for h in range(top + 1):
        row = dst._one("SELECT header, signature FROM blocks WHERE height=?", (h,))
        want = src._one("SELECT header, signature FROM blocks WHERE height=?", (h,))
        if row is None or bytes(row[0]) != bytes(want[0]) or bytes(row[1]) != bytes(want[1]):
            raise LedgerError(errors.MIGRATE_MISMATCH, f"block {h}: header or signature differs")
        header = HEADER.decode(bytes(row[0]))
        if parent is not None and header.parent != parent:
            raise LedgerError(errors.MIGRATE_MISMATCH, f"block {h} does not extend block {h - 1}")
        parent = header.hash
        if h:
            rows = dst._rows("SELECT raw, receipt FROM txs WHERE height=? ORDER BY pos", (h,))
            txs, receipts = [bytes(r[0]) for r in rows], [bytes(r[1]) for r in rows]
            if merkle_root(txs) != header.tx_root or merkle_root(receipts) != header.receipts_root:
                raise LedgerError(errors.MIGRATE_MISMATCH, f"block {h}: transactions or receipts root")
        if progress and (h % 100 == 0 or h == top):
            progress("proof", h, top)
    head = dst.head()
    root = dst.load_state().root()
    if root != head.state_root:
        raise LedgerError(errors.MIGRATE_MISMATCH, f"the target's state gives root {root.hex()}, block {top} "
                          f"says {head.state_root.hex()}")
    return head.hash.hex(), root.hex()


def _plain(v: object) -> object:
    """Driver values as plain Python (SQLite may hand back memoryview-like values; PostgreSQL bytes)."""
    return bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else v
