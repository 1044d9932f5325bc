"""Settlement reads as JSON, for the HTTP API (`/v1/settlement/…`) and the embedded CLI.

The same split as billing/service.py: plain functions over a state reader and the head height, and
`SettlementReads`, which runs them under a node's lock so both backends answer the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ailedger.chain.node import Node
from ailedger.chain.params import Reader
from ailedger.core import errors
from ailedger.core.address import decode_address, encode_address
from ailedger.core.errors import LedgerError
from ailedger.settlement import views
from ailedger.settlement.state import get_earnings, get_line, get_summary

T = TypeVar("T")
MAX_LINES = 1_000
MAX_RECEIPTS = 1_000


def _range(from_height: int | None, to_height: int | None) -> tuple[int, int | None]:
    start = 0 if from_height is None else from_height
    if start < 0 or (to_height is not None and (to_height < 0 or to_height < start)):
        raise LedgerError(errors.BAD_HEIGHT_RANGE, f"from {from_height}, to {to_height}")
    return start, to_height


def earnings_json(state: Reader, height: int, address: str, datanet: str | None = None, model: str | None = None,
                  from_height: int | None = None, to_height: int | None = None,
                  limit: int = 100) -> dict[str, Any]:
    """An address's earnings: balance, vesting, and its lines (per block) in a height range, with totals per
    Datanet and per model over the lines shown. `limit` caps the lines (1..1,000); `more` says if any were left."""
    raw = decode_address(address)
    start, stop = _range(from_height, to_height)
    if not 1 <= limit <= MAX_LINES:
        raise LedgerError(errors.BAD_REQUEST, f"limit must be within 1..{MAX_LINES}")
    e = get_earnings(state, raw)
    lines, more = views.lines_in_range(state, raw, e.lines, start, stop, datanet, model, limit)
    return {"address": encode_address(raw), "height": height, **views.earnings_doc(e),
            "vesting": views.vesting(state, raw),
            "filter": {"datanet": datanet, "model": model, "from_height": from_height, "to_height": to_height},
            "by_datanet": views.totals_by(lines, "datanet"), "by_model": views.totals_by(lines, "model"),
            "lines": lines, "more": more}


def line_json(state: Reader, height: int, address: str, line_height: int, limit: int = 100) -> dict[str, Any]:
    """One earnings line with the receipts behind it, each part recomputed by the settlement rule."""
    raw = decode_address(address)
    if not 1 <= limit <= MAX_RECEIPTS:
        raise LedgerError(errors.BAD_REQUEST, f"limit must be within 1..{MAX_RECEIPTS}")
    line = get_line(state, raw, line_height)
    if line is None:
        raise LedgerError(errors.EARNINGS_LINE_NOT_FOUND, f"{encode_address(raw)} at {line_height}")
    summary = get_summary(state, line_height)
    receipts = views.line_receipts(state, raw, line_height, limit)
    return {"address": encode_address(raw), "height": height, "line_height": line_height,
            "entries": [views.entry_json(x) for x in line.entries],
            "receipt_range": [summary.first_seq, summary.end_seq] if summary else None,
            "receipts": receipts, "more": len(receipts) >= limit}


def totals_json(state: Reader, height: int) -> dict[str, Any]:
    """Lifetime settlement totals and the supply-conservation check."""
    return {"height": height, **views.conservation(state)}


class SettlementReads:
    """The reads above over a node's committed state, under its lock."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with self.node.lock:
            return fn(self.node.state, self.node.store.height(), *args)

    def earnings(self, address: str, datanet: str | None = None, model: str | None = None,
                 from_height: int | None = None, to_height: int | None = None, limit: int = 100) -> dict[str, Any]:
        return self._read(earnings_json, address, datanet, model, from_height, to_height, limit)

    def line(self, address: str, line_height: int, limit: int = 100) -> dict[str, Any]:
        return self._read(line_json, address, line_height, limit)

    def totals(self) -> dict[str, Any]:
        return self._read(totals_json)
