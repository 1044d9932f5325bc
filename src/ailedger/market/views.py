"""Read helpers over job and market state (CLI, API, the provider worker and the simulation read through these)."""

from __future__ import annotations

from ailedger.chain.params import Reader
from ailedger.market import concentration
from ailedger.market import leases as market_leases
from ailedger.market.book import (
    STAT,
    Check,
    Lease,
    Order,
    Provider,
    Stat,
    bid_key,
    bidders,
    count,
    get_check,
    get_lease,
    get_order,
    get_provider,
    provider_at,
)
from ailedger.market.concentration import classes
from ailedger.market.state import ESCROWED, Job, get_count, get_job, index_key, job_id

__all__ = ["bids", "checks", "classes", "escrow_and_bonds", "escrowed", "get_check", "get_job", "get_lease",
           "get_order", "get_provider", "job_id", "leases", "list_jobs", "market_holdings", "orders", "owed",
           "providers", "share_now", "stat_history"]


def list_jobs(state: Reader, status: int | None = None) -> list[Job]:
    """Jobs in posting order, optionally only those with `status`."""
    out = []
    for i in range(get_count(state)):
        job = get_job(state, state.get(index_key(i)) or b"")
        if job is not None and (status is None or job.status == status):
            out.append(job)
    return out


def escrowed(state: Reader) -> int:
    """The budgets jobs hold now (open, claimed or submitted): part of the total supply."""
    return sum(j.budget for j in list_jobs(state) if j.status in ESCROWED)


# -- the compute market (docs/market.md) ------------------------------------------------------------
# Read helpers the CLI, the API, the provider worker and the simulation share; each takes a state reader.

def providers(state: Reader) -> list[Provider]:
    """Every provider ever registered, in registration order (retired ones have bond 0)."""
    out = []
    for i in range(count(state, b"mkt/pn")):
        p = get_provider(state, provider_at(state, i))
        if p is not None:
            out.append(p)
    return out


def orders(state: Reader, status: int | None = None, start: int = 1) -> list[Order]:
    """Orders from id `start` in posting order, optionally only those with `status` (book.OrderStatus)."""
    out = []
    for oid in range(start, count(state, b"mkt/on") + 1):
        o = get_order(state, oid)
        if o is not None and (status is None or o.status == status):
            out.append(o)
    return out


def leases(state: Reader, status: int | None = None, party: bytes | None = None) -> list[Lease]:
    """Leases in opening order, optionally only those with `status` or with `party` as provider or consumer."""
    out = []
    for lid in range(1, count(state, b"mkt/ln") + 1):
        lease = get_lease(state, lid)
        if lease is None or (status is not None and lease.status != status):
            continue
        if party is None or party in (lease.provider, lease.consumer):
            out.append(lease)
    return out


def checks(state: Reader, status: int | None = None, verifier: bytes | None = None) -> list[Check]:
    """Spot checks in drawing order, optionally only those with `status` or drawn for `verifier`."""
    out = []
    for cid in range(1, count(state, b"mkt/cn") + 1):
        c = get_check(state, cid)
        if c is not None and (status is None or c.status == status) and verifier in (None, c.verifier):
            out.append(c)
    return out


def owed(lease: Lease) -> int:
    """What the lease owes its provider now for reported work (withdraw_pay would move this)."""
    return market_leases.owed(lease)


def bids(state: Reader, order_id: int) -> list[tuple[bytes, int]]:
    """The bids (address, price) of the order's current window, in bid order."""
    out = []
    for address in bidders(state, order_id):
        raw = state.get(bid_key(order_id, address))
        if raw is not None:
            out.append((address, int.from_bytes(raw, "big")))
    return out


def share_now(state: Reader, cls: str, height: int) -> Stat:
    """The class's concentration from the live counters (what the next Stat row will say)."""
    return concentration.measure(state, cls, height)


def stat_history(state: Reader, cls: str, start: int, end: int) -> list[Stat]:
    """The Stat rows of `cls` written between heights start and end (inclusive): one per height at which
    the class's leased capacity changed; a plot carries each row forward to the next."""
    out = []
    for h in range(start, end + 1):
        raw = state.get(concentration.stat_key(cls, h))
        if raw is not None:
            out.append(STAT.decode(raw))
    return out


def market_holdings(state: Reader) -> int:
    """What the market holds now: every provider's bond plus every order's escrow (part of the total supply)."""
    return sum(p.bond for p in providers(state)) + sum(o.escrow for o in orders(state))


def escrow_and_bonds(state: Reader) -> int:
    """escrowed (the plain jobs) plus market_holdings: everything the market module holds."""
    return escrowed(state) + market_holdings(state)
