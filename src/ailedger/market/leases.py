"""How a lease's escrow moves: lazy pay for reported work, and the four ways a lease ends.

Pay is lazy, as Akash settles: nothing moves per block. A per-block lease owes price x (blocks from the
last paid height to the last reported height, never past its end); a per-token lease owes
floor(tokens reported x price / 1,000) less what it has paid. Work that is not reported is not owed.
The owed amount moves from the order's escrow to the provider when the provider withdraws, and when the
lease ends or the consumer closes it. When a lease fails (a report timeout or a failed spot check) the
provider forfeits what it had not withdrawn, loses `market_slash_bps` of its bond to the consumer and
compute-provider reputation, and the order reopens for the rest of its escrow and duration. Every
amount moves in one piece between two holders, so nothing rounds except the per-token floor, which
favours the consumer.
"""

from __future__ import annotations

from ailedger.chain import accounts, params
from ailedger.chain.state import Journal
from ailedger.market import concentration
from ailedger.market.book import (
    Lease,
    LeaseStatus,
    Order,
    OrderStatus,
    enqueue,
    get_provider,
    must_order,
    put_lease,
    put_order,
    put_provider,
)
from ailedger.market.payloads import Unit
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role

BPS = 10_000


def owed(lease: Lease) -> int:
    if lease.unit == Unit.KTOKENS:
        return lease.tokens * lease.price // 1_000 - lease.paid
    return lease.price * max(0, min(lease.last_report, lease.end) - lease.paid_through)


def pay_out(state: Journal, lease: Lease, order: Order) -> int:
    """Move what the lease owes from the order's escrow to the provider; returns the amount."""
    amount = min(owed(lease), order.escrow)
    if amount:
        order.escrow -= amount
        accounts.credit(state, lease.provider, amount)
    lease.paid += amount
    lease.paid_through = max(lease.paid_through, min(lease.last_report, lease.end))
    return amount


def rep_weight(state: Journal) -> int:
    return params.get(state, "market_rep_worker_weight")


def _release(state: Journal, lease: Lease, height: int, status: int) -> None:
    lease.status, lease.closed = status, height
    put_lease(state, lease)
    concentration.change(state, lease.cls, lease.operator, -lease.units, lease.end)
    p = get_provider(state, lease.provider)
    if p is not None:
        p.active_leases -= 1
        put_provider(state, p)


def _refund(state: Journal, order: Order, status: int) -> None:
    if order.escrow:
        accounts.credit(state, order.consumer, order.escrow)
        order.escrow = 0
    order.status = status
    put_order(state, order)


def finish(state: Journal, lease: Lease, height: int, status: int) -> None:
    """The lease ran its duration (ENDED) or its consumer closed it (CLOSED): pay what is owed, refund the rest."""
    order = must_order(state, lease.order)
    pay_out(state, lease, order)
    _release(state, lease, height, status)
    _refund(state, order, OrderStatus.DONE)
    if status == LeaseStatus.ENDED:
        reputation.record_outcome(state, lease.provider, Role.COMPUTE_PROVIDER, True, height, rep_weight(state))


def slash_bond(state: Journal, provider: bytes, bps: int, to: bytes) -> int:
    """Take bps of the provider's market bond and credit it to `to`; returns the amount."""
    p = get_provider(state, provider)
    if p is None:
        return 0
    amount = p.bond * bps // BPS
    if amount:
        p.bond -= amount
        put_provider(state, p)
        accounts.credit(state, to, amount)
    return amount


def fail(state: Journal, lease: Lease, height: int, status: int) -> None:
    """The provider stopped reporting or failed a spot check: slash, forfeit unpaid pay, reopen the order."""
    order = must_order(state, lease.order)
    _release(state, lease, height, status)
    slash_bond(state, lease.provider, params.get(state, "market_slash_bps"), lease.consumer)
    reputation.record_outcome(state, lease.provider, Role.COMPUTE_PROVIDER, False, height, rep_weight(state))
    remaining = lease.end - height
    if remaining < 1 or not order.escrow:
        _refund(state, order, OrderStatus.DONE)
        return
    order.status, order.duration, order.reopened = OrderStatus.BIDDING, remaining, order.reopened + 1
    order.window_end = height + order.window_blocks
    put_order(state, order)
    enqueue(state, b"w", order.window_end, order.id)
