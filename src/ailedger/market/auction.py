"""The reverse auction: which bid wins when an order's bid window closes.

At the end of block `window_end` the window's bids are ranked by price (lowest first), then by the
bidder's compute-provider reputation (highest first), then by address (lowest first): a total order,
so every node picks the same winner. The first bid still valid at the close wins: the bidder is still a
provider with bond >= `market_provider_min_stake`, its offer still covers the order's resources, and
its operator stays within the concentration cap after taking the lease, now and at every scheduled end
of the class's active leases before the new lease's own end (concentration.allows). A bid that fails any
of these loses to the next one. No valid bid: the order expires and its escrow goes back to the consumer.
"""

from __future__ import annotations

from ailedger.chain import accounts, params
from ailedger.chain.params import Reader
from ailedger.chain.state import Journal
from ailedger.market import concentration
from ailedger.market.book import (
    Lease,
    Order,
    OrderStatus,
    Provider,
    enqueue,
    get_provider,
    next_id,
    put_lease,
    put_order,
    put_provider,
    take_bids,
)
from ailedger.market.resources import covers, resource_class, units
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role


def eligible(state: Reader, p: Provider | None, order: Order) -> bool:
    return (p is not None and p.bond >= params.get(state, "market_provider_min_stake") and bool(p.has_offer)
            and covers(p.offer, order.needs) and p.address != order.consumer)


def close_window(state: Journal, order: Order, height: int) -> None:
    bids = take_bids(state, order.id)
    ranked = sorted(bids, key=lambda b: (b[1], -reputation.score_bps(state, b[0], Role.COMPUTE_PROVIDER, height),
                                         b[0]))
    cls, need = resource_class(order.needs), units(order.needs)
    for address, price in ranked:
        p = get_provider(state, address)
        if p is not None and eligible(state, p, order) and concentration.allows(
                state, cls, p.operator, need, height, height + order.duration):
            open_lease(state, order, p, price, height)
            return
    if order.escrow:
        accounts.credit(state, order.consumer, order.escrow)
        order.escrow = 0
    order.status = OrderStatus.EXPIRED
    put_order(state, order)


def open_lease(state: Journal, order: Order, p: Provider, price: int, height: int) -> None:
    lid = next_id(state, b"mkt/ln")
    cls = resource_class(order.needs)
    lease = Lease(lid, order.id, p.address, order.consumer, p.operator, cls, units(order.needs), order.unit, price,
                  height, height + order.duration, height, height, 0, 0, 0, bytes(32))
    put_lease(state, lease)
    order.status, order.lease = OrderStatus.LEASED, lid
    put_order(state, order)
    p.active_leases += 1
    put_provider(state, p)
    concentration.change(state, cls, p.operator, lease.units, lease.end)
    enqueue(state, b"e", lease.end, lid)
    timeout = params.get(state, "market_report_timeout_blocks")
    if height + timeout < lease.end:
        enqueue(state, b"t", height + timeout, lid)
