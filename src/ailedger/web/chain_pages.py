"""What the chain pages show: home, block lists, a block, a transaction, an account.

Each function returns the plain dict its template renders, read through keyed lookups (the store's
primary keys, the state's keys) or one indexed range of the history tables, never a scan, so a page
costs the same on a chain of any length. Lists take a keyset cursor (`before`: the last row shown)
rather than an offset, which would make the database walk past every skipped row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ailedger.chain import accounts
from ailedger.chain.tx import decode_tx
from ailedger.chain.views import tx_json
from ailedger.core import errors
from ailedger.core.address import decode_address, encode_address
from ailedger.core.errors import LedgerError
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role
from ailedger.settlement.service import earnings_json
from ailedger.web.history import History
from ailedger.web.source import NodeReads

PAGE = 25
SERIES = 200  # points in a "over time" chart: the latest blocks


@dataclass(frozen=True)
class Explorer:
    """What every page reads: the node (state, store, blobs) and the history index beside it."""

    node: NodeReads
    history: History


def when(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def parse_cursor(text: str | None, parts: int) -> tuple[int, ...] | None:
    """A keyset cursor `H` or `H.P` from a query string; bad_request when it is not that."""
    if text is None or text == "":
        return None
    bits = text.split(".")
    if len(bits) != parts or not all(b.isdigit() and len(b) <= 18 for b in bits):
        raise LedgerError(errors.BAD_REQUEST, f"the page cursor {text[:40]!r} is not {'H.P' if parts == 2 else 'H'}")
    return tuple(int(b) for b in bits)


def _series(ex: Explorer) -> dict[str, list[int]]:
    rows = list(reversed(ex.history.blocks(None, SERIES)))
    return {"height": [r.height for r in rows], "txs": [r.txs for r in rows],
            "data_paid": [r.data_paid for r in rows]}


def home(ex: Explorer) -> dict[str, Any]:
    status = ex.node.status()
    latest = ex.history.blocks(None, 10)
    return {"status": status, "latest": latest, "series": _series(ex),
            "top_models": ex.history.top_models(10), "top_datanets": ex.history.top_datanets(10)}


def blocks(ex: Explorer, before: str | None) -> dict[str, Any]:
    cursor = parse_cursor(before, 1)
    rows = ex.history.blocks(cursor[0] if cursor else None, PAGE)
    more = len(rows) == PAGE and rows[-1].height > 1
    return {"blocks": rows, "next": str(rows[-1].height) if more else None, "first": cursor is None}


def block(ex: Explorer, height: int, after: str | None) -> dict[str, Any]:
    """The header, and a page of the block's transactions (a block may hold thousands)."""
    header = ex.node.store.header(height)
    cursor = parse_cursor(after, 1)
    start = cursor[0] + 1 if cursor else 0
    rows = ex.node.store.block_txs(height, start, PAGE)
    txs = [tx_json(ex.node.runtime, decode_tx(raw), receipt, height, pos) for pos, raw, receipt in rows]
    more = bool(rows) and rows[-1][0] + 1 < header.tx_count
    return {"header": header.to_json(), "when": when(header.timestamp_ms), "top": ex.node.store.height(),
            "txs": txs, "next": str(rows[-1][0]) if more else None, "first": cursor is None}


def tx(ex: Explorer, tx_id: str) -> dict[str, Any]:
    doc = ex.node.tx(tx_id.lower())
    if "height" in doc:
        header = ex.node.store.header(int(doc["height"]))
        doc["when"] = when(header.timestamp_ms)
        doc["receipts_root"] = header.receipts_root.hex()
        doc["tx_count"] = header.tx_count
    return doc


def account(ex: Explorer, address: str, before: str | None) -> dict[str, Any]:
    raw = decode_address(address)
    cursor = parse_cursor(before, 2)
    doc = ex.node.account(address)
    found = ex.history.account_txs(raw, (cursor[0], cursor[1]) if cursor else None, PAGE)
    txs = []
    for h, pos in found:
        for p, wire, receipt in ex.node.store.block_txs(h, pos, 1):
            txs.append(tx_json(ex.node.runtime, decode_tx(wire), receipt, h, p))
    more = len(found) == PAGE
    with ex.node.lock:
        height = ex.node.store.height()
        roles = {}
        for role in Role:
            points = ex.history.reputation(raw, int(role))
            if points:
                now = reputation.score_bps(ex.node.state, raw, int(role), height)
                if points[-1][0] < height:
                    points = [*points, (height, now)]
                roles[role.name.lower()] = {"now": now, "height": [p[0] for p in points],
                                            "score": [p[1] for p in points]}
        earnings = {**earnings_json(ex.node.state, height, address, limit=1),
                    "by_datanet": ex.history.earnings(raw, "datanet"), "by_model": ex.history.earnings(raw, "model")}
    return {"address": encode_address(raw), "account": doc, "txs": txs,
            "next": f"{found[-1][0]}.{found[-1][1]}" if more else None, "first": cursor is None,
            "reputation": roles, "earnings": earnings, "has_proof": _has_leaf(ex, raw)}


def _has_leaf(ex: Explorer, raw: bytes) -> bool:
    with ex.node.lock:
        return ex.node.state.proof(accounts.account_key(raw)) is not None
