"""A block's charged receipts as NumPy columns, read from billing's row blocks in one read per transaction.

Billing's submit_receipts writes one packed row block per transaction (`billing.state.
pack_settlement_rows`): per-transaction tables of distinct models, callers and record hashes, then
fixed-width rows and shares that index them. Here the blocks of one height are decoded in place with
`np.frombuffer`, the per-transaction tables are merged into block-wide ones (a dict per table, one
entry per distinct value of each transaction, never one per receipt), and the local indices are
mapped to the block-wide ones with one NumPy gather each. Record tables, the large ones, are merged
in NumPy too (`dedup_hashes`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ailedger.billing.state import SR_HEADER, settlement_rows_count_key, settlement_rows_key
from ailedger.chain.state import Journal

ROW = np.dtype([("seq", "<u8"), ("charged", "<u8"), ("caller", "<u2"), ("model", "<u2"), ("shares", "u1")])
SHARE = np.dtype([("record", "<u4"), ("bp", "<u2")])
_U32 = struct.Struct(">I")
_MODEL_VERSION = struct.Struct(">I")
I64 = npt.NDArray[np.int64]


@dataclass
class Batch:
    """Columns per receipt row (charged > 0) and per share, with the block-wide tables they index."""

    seq: I64
    charged: I64
    caller: I64
    model: I64
    provider: I64
    shares: I64  # number of shares of each row
    share_row: I64  # the row each share belongs to (rows' shares are contiguous, in row order)
    share_record: I64
    share_bp: I64
    callers: list[bytes] = field(default_factory=list)
    providers: list[bytes] = field(default_factory=list)
    models: list[tuple[str, int]] = field(default_factory=list)
    records: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seq)


def _index(table: dict[Any, int], values: list[Any]) -> I64:
    return np.array([table.setdefault(v, len(table)) for v in values], dtype=np.int64)


def dedup_hashes(table: bytes, width: int) -> tuple[list[bytes], I64]:
    """(distinct `width`-byte values, index of each value among them), all in NumPy.

    Values are grouped by their first 8 bytes, then every value is compared in full with its group's
    first: record hashes are SHA-256, so a shared prefix is all but impossible, but when it happens
    the exact (slower) dict path decides, never the prefix.
    """
    words = np.frombuffer(table, dtype="<u8").reshape(-1, width // 8)
    if not len(words):
        return [], np.zeros(0, dtype=np.int64)
    order = np.argsort(words[:, 0])
    prefix = words[order, 0]
    starts = np.concatenate(([True], prefix[1:] != prefix[:-1]))
    group = np.cumsum(starts) - 1
    first = order[starts]  # one member of each group, in prefix order
    inverse = np.empty(len(words), dtype=np.int64)
    inverse[order] = group
    if np.array_equal(words, words[first][inverse]):
        flat = table_rows(table, width, first)
        return flat, inverse
    seen: dict[bytes, int] = {}
    index = _index(seen, [table[i:i + width] for i in range(0, len(table), width)])
    return list(seen), index


def table_rows(table: bytes, width: int, picks: I64) -> list[bytes]:
    rows = np.frombuffer(table, dtype=np.uint8).reshape(-1, width)[picks].tobytes()
    return [rows[i:i + width] for i in range(0, len(rows), width)]


def take_row_blocks(state: Journal, height: int) -> list[bytes]:
    """The row blocks stored at `height`, removed from state (they are settled now)."""
    count_key = settlement_rows_count_key(height)
    raw = state.get(count_key)
    if not raw:
        return []
    blocks = []
    for n in range(int(_U32.unpack(raw)[0])):
        key = settlement_rows_key(height, n)
        blocks.append(state.get(key) or b"")
        state.delete(key)
    state.delete(count_key)
    return blocks


def load_batch(blocks: list[bytes]) -> Batch:
    callers: dict[bytes, int] = {}
    providers: dict[bytes, int] = {}
    models: dict[tuple[str, int], int] = {}
    tables: list[bytes] = []
    table_size = 0
    cols: dict[str, list[I64]] = {k: [] for k in ("seq", "charged", "caller", "model", "provider", "shares",
                                                 "record", "bp")}
    for raw in blocks:
        n_rows, n_shares, n_records, n_callers, n_models = SR_HEADER.unpack_from(raw, 0)
        pos = SR_HEADER.size
        provider = providers.setdefault(raw[pos:pos + 20], len(providers))
        pos += 20
        names = []
        for _ in range(n_models):
            n = raw[pos]
            name = raw[pos + 1:pos + 1 + n].decode()
            version = _MODEL_VERSION.unpack_from(raw, pos + 1 + n)[0]
            names.append((name, int(version)))
            pos += 5 + n
        model_map = _index(models, names)
        caller_map = _index(callers, [raw[pos + 20 * i:pos + 20 * i + 20] for i in range(n_callers)])
        pos += 20 * n_callers
        tables.append(raw[pos:pos + 32 * n_records])
        pos += 32 * n_records
        rows = np.frombuffer(raw, dtype=ROW, count=n_rows, offset=pos)
        pos += ROW.itemsize * n_rows
        shares = np.frombuffer(raw, dtype=SHARE, count=n_shares, offset=pos)
        cols["seq"].append(rows["seq"].astype(np.int64))
        cols["charged"].append(rows["charged"].astype(np.int64))
        cols["caller"].append(caller_map[rows["caller"]])
        cols["model"].append(model_map[rows["model"]])
        cols["provider"].append(np.full(n_rows, provider, dtype=np.int64))
        cols["shares"].append(rows["shares"].astype(np.int64))
        cols["record"].append(shares["record"].astype(np.int64) + table_size)
        table_size += n_records
        cols["bp"].append(shares["bp"].astype(np.int64))
    cat = {k: np.concatenate(v) if v else np.zeros(0, dtype=np.int64) for k, v in cols.items()}
    share_row = np.repeat(np.arange(len(cat["seq"]), dtype=np.int64), cat["shares"])
    records, record_of = dedup_hashes(b"".join(tables), 32)
    return Batch(cat["seq"], cat["charged"], cat["caller"], cat["model"], cat["provider"], cat["shares"],
                 share_row, record_of[cat["record"]], cat["bp"], list(callers), list(providers), list(models),
                 records)
