"""Governance reads as JSON, for the HTTP API (`/v1/gov/…`) and the embedded CLI.

The same split as settlement/service.py: plain functions over a state reader and the head height,
and `GovReads`, which runs them under a node's lock so both backends answer the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ailedger.chain.node import Node
from ailedger.chain.params import Reader
from ailedger.core import errors
from ailedger.core.address import decode_address
from ailedger.core.errors import LedgerError
from ailedger.governance import views
from ailedger.governance.state import STATUS_NAMES, get_header

T = TypeVar("T")
MAX_PAGE = 1_000


def _page(offset: int, limit: int) -> None:
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise LedgerError(errors.BAD_REQUEST, f"offset must be >= 0 and limit within 1..{MAX_PAGE}")


def proposals_json(state: Reader, height: int, status: str | None = None, offset: int = 0,
                   limit: int = 100) -> dict[str, Any]:
    """Proposals newest first, optionally of one status (deposit, voting, passed, executed, ...)."""
    _page(offset, limit)
    code = None
    if status is not None:
        codes = {name: number for number, name in STATUS_NAMES.items()}
        if status not in codes:
            raise LedgerError(errors.BAD_REQUEST, f"status must be one of {', '.join(codes)}")
        code = codes[status]
    items, total = views.list_proposals(state, code, offset, limit)
    return {"height": height, "proposals": items, "total": total, "offset": offset,
            "more": offset + len(items) < total, **views.treasury_doc(state)}


def proposal_json(state: Reader, height: int, pid: int, voter: str | None = None) -> dict[str, Any]:
    """One proposal: its text, changes or spend, tally, deposits and deposit fate (and one voter's vote)."""
    h = get_header(state, pid)
    return {"height": height, **views.proposal_doc(state, pid, h, decode_address(voter) if voter else None)}


def treasury_json(state: Reader, height: int) -> dict[str, Any]:
    return {"height": height, **views.treasury_doc(state)}


class GovReads:
    """The reads above over a node's committed state, under its lock."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with self.node.lock:
            return fn(self.node.state, self.node.store.height(), *args)

    def proposals(self, status: str | None = None, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        return self._read(proposals_json, status, offset, limit)

    def proposal(self, pid: int, voter: str | None = None) -> dict[str, Any]:
        return self._read(proposal_json, pid, voter)

    def treasury(self) -> dict[str, Any]:
        return self._read(treasury_json)
