"""Compute job and market reads as JSON, for the HTTP API (`/v1/jobs`, `/v1/market/...`) and the embedded CLI.

The same split as `models/service.py`: plain functions over a state reader and the head height,
and `JobReads`, which runs them under a node's lock so that both backends answer the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ailedger.chain import params
from ailedger.chain.node import Node
from ailedger.chain.params import Reader
from ailedger.core import errors
from ailedger.core.address import decode_address, encode_address
from ailedger.core.errors import LedgerError
from ailedger.core.hexid import parse_hex32
from ailedger.market import book, views
from ailedger.market.state import STATUS_NAMES
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role

T = TypeVar("T")
STATUS_BY_NAME = {v: k for k, v in STATUS_NAMES.items()}


def parse_job_id(text: str) -> bytes:
    """A job id as 64 hex digits (any case), else bad_job_id."""
    return parse_hex32(text, errors.BAD_JOB_ID)


def jobs_json(state: Reader, height: int, status: str | None = None) -> dict[str, Any]:
    """Jobs in posting order, optionally only those in `status` (open, claimed, submitted, paid, refunded)."""
    code = None
    if status is not None:
        if status not in STATUS_BY_NAME:
            raise LedgerError(errors.BAD_REQUEST, f"status {status!r}: use one of {', '.join(STATUS_BY_NAME)}")
        code = STATUS_BY_NAME[status]
    return {"height": height, "status": status, "jobs": [j.to_json() for j in views.list_jobs(state, code)]}


def job_json(state: Reader, height: int, id_hex: str) -> dict[str, Any]:
    job = views.get_job(state, parse_job_id(id_hex))
    if job is None:
        raise LedgerError(errors.JOB_NOT_FOUND, id_hex)
    return {**job.to_json(), "height": height}


class JobReads:
    """The reads above over a node's committed state, under its lock."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with self.node.lock:
            return fn(self.node.state, self.node.store.height(), *args)

    def jobs(self, status: str | None = None) -> dict[str, Any]:
        return self._read(jobs_json, status)

    def job(self, id_hex: str) -> dict[str, Any]:
        return self._read(job_json, id_hex)


# -- the compute market (`/v1/market/<view>`, `ailedger market ...`) --------------------------------
# One dispatcher, so the HTTP client, the embedded backend and the API route share a single door:
# market_json(state, height, VIEW, {query}) for VIEW in MARKET_VIEWS.

MARKET_VIEWS = ("providers", "orders", "leases", "checks", "stats")
STATS_WINDOW = 100  # blocks of history `stats` returns by default


def _int_arg(query: dict[str, str], name: str, default: int | None = None) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise LedgerError(errors.BAD_MARKET_ID, f"{name}={raw!r}")
    return int(raw)


def _status(query: dict[str, str], names: dict[int, str]) -> int | None:
    status = query.get("status")
    if not status:
        return None
    codes = {v: k for k, v in names.items()}
    if status not in codes:
        raise LedgerError(errors.BAD_REQUEST, f"status {status!r}: use one of {', '.join(codes)}")
    return codes[status]


def _address(query: dict[str, str], name: str) -> bytes | None:
    raw = query.get(name)
    return decode_address(raw) if raw else None


def _providers(state: Reader, height: int, q: dict[str, str]) -> dict[str, Any]:
    who = _address(q, "address")
    out = []
    for p in views.providers(state):
        if who is None or p.address == who:
            out.append({**p.to_json(), "reputation_bps": reputation.score_bps(state, p.address,
                                                                               Role.COMPUTE_PROVIDER, height)})
    if who is not None and not out:
        raise LedgerError(errors.PROVIDER_NOT_REGISTERED, encode_address(who))
    return {"height": height, "providers": out}


def _orders(state: Reader, height: int, q: dict[str, str]) -> dict[str, Any]:
    oid = _int_arg(q, "id")
    if oid is not None:
        o = views.get_order(state, oid)
        if o is None:
            raise LedgerError(errors.ORDER_NOT_FOUND, f"order {oid}")
        bids = [{"provider": encode_address(a), "price": price} for a, price in views.bids(state, oid)]
        return {"height": height, "orders": [{**o.to_json(), "bids": bids}]}
    status = _status(q, book.ORDER_STATUS)
    start = _int_arg(q, "from", 1) or 1
    return {"height": height, "orders": [o.to_json() for o in views.orders(state, status, start)]}


def _leases(state: Reader, height: int, q: dict[str, str]) -> dict[str, Any]:
    lid = _int_arg(q, "id")
    if lid is not None:
        lease = views.get_lease(state, lid)
        if lease is None:
            raise LedgerError(errors.LEASE_NOT_FOUND, f"lease {lid}")
        found = [lease]
    else:
        found = views.leases(state, _status(q, book.LEASE_STATUS), _address(q, "party"))
    return {"height": height, "leases": [{**x.to_json(), "owed": views.owed(x)} for x in found]}


def _check_json(state: Reader, c: book.Check) -> dict[str, Any]:
    """A check with the block seed it was drawn with and, for a report_training, the root it committed to."""
    seed, committed = book.check_seed(state, c.id), book.train_root(state, c.lease, c.digest)
    return {**c.to_json(), "seed": seed.hex() if seed else None,
            "root": committed.root.hex() if committed else None,
            "boundaries": committed.boundaries if committed else None,
            "manifest": committed.manifest.hex() if committed else None}


def _checks(state: Reader, height: int, q: dict[str, str]) -> dict[str, Any]:
    found = views.checks(state, _status(q, book.CHECK_STATUS), _address(q, "verifier"))
    return {"height": height, "checks": [_check_json(state, c) for c in found]}


def _stats(state: Reader, height: int, q: dict[str, str]) -> dict[str, Any]:
    """Per resource class: the concentration now, and the rows written in the last `window` blocks."""
    window = _int_arg(q, "window", STATS_WINDOW) or STATS_WINDOW
    cap = params.get(state, "market_max_operator_share_bps")
    classes = []
    for cls in views.classes(state):
        rows = views.stat_history(state, cls, max(0, height - window + 1), height)
        classes.append({"class": cls, "now": views.share_now(state, cls, height).to_json(),
                        "max_top_share_bps": max((r.top_share_bps for r in rows), default=0),
                        "history": [r.to_json() for r in rows]})
    return {"height": height, "cap_bps": cap, "window": window,
            "share_floor_units": params.get(state, "market_share_floor_units"), "classes": classes}


_VIEWS: dict[str, Callable[[Reader, int, dict[str, str]], dict[str, Any]]] = {
    "providers": _providers, "orders": _orders, "leases": _leases, "checks": _checks, "stats": _stats}


def market_json(state: Reader, height: int, view: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    """providers [address], orders [status|id|from], leases [status|party|id], checks [status|verifier],
    stats [window]: the JSON the API serves under /v1/market/VIEW and the CLI prints."""
    fn = _VIEWS.get(view)
    if fn is None:
        raise LedgerError(errors.BAD_REQUEST, f"market view {view!r}: use one of {', '.join(MARKET_VIEWS)}")
    return fn(state, height, dict(query or {}))


class MarketReads(JobReads):
    """The market views over a node's committed state, under its lock."""

    def market(self, view: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        return self._read(market_json, view, query)
