"""Helpers for compute-market tests: actors, payload builders and a Sim with providers registered and offering."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ailedger.chain.genesis import Allocation
from ailedger.chain.state import State
from ailedger.core import errors
from ailedger.core.keys import KeyPair
from ailedger.market import concentration, views
from ailedger.market import payloads as p
from ailedger.market.book import Lease, LeaseStatus
from ailedger.market.resources import Resources
from ailedger.market.state import Kind
from tests.datanet_sim import FEE, PROPOSER, Sim

BOND = 2_000_000
GPU = Resources(8, 64, "h100", 2, "eu")
CPU = Resources(4, 16, "", 0, "")


def key(i: int) -> KeyPair:
    return KeyPair.from_seed((0x3000 + i).to_bytes(32, "big"))


CONSUMER, OTHER = key(1), key(2)
PROVIDERS = [key(10 + i) for i in range(6)]


def order(needs: Resources = CPU, max_price: int = 100, duration: int = 10, window: int = 2, **kw: Any
          ) -> p.PostOrder:
    unit = kw.pop("unit", p.Unit.BLOCK)
    budget = kw.pop("budget", max_price * duration if unit == p.Unit.BLOCK else 10_000)
    return p.PostOrder(kw.pop("kind", Kind.TRAIN if unit == p.Unit.BLOCK else Kind.SERVE),
                       kw.pop("spec_hash", b"\x07" * 32), needs, unit, max_price, budget, window, duration,
                       kw.pop("model", ""))


def offer(res: Resources = GPU, per_block: int = 50, per_ktokens: int = 20) -> p.PostOffer:
    return p.PostOffer(res, per_block, per_ktokens)


def market(params: dict[str, int] | None = None, operators: list[int] | None = None) -> Sim:
    """A Sim whose PROVIDERS are registered (operator i of `operators`, default each its own) with GPU offers."""
    everyone = [CONSUMER, OTHER, *PROVIDERS]
    base = {"market_check_min_bps": 0, "market_check_max_bps": 0}
    sim = Sim([Allocation(k.address, 10**12) for k in everyone], {**base, **(params or {})})
    ops = operators or list(range(len(PROVIDERS)))
    sim.ok(*[(k, p.REGISTER_PROVIDER, p.RegisterProvider(key(100 + ops[i]).address, BOND))
             for i, k in enumerate(PROVIDERS)])
    sim.ok(*[(k, p.POST_OFFER, offer()) for k in PROVIDERS])
    return sim


def last_order(sim: Sim) -> int:
    return len(views.orders(sim.state))


def lease_of(sim: Sim, order_id: int) -> Lease:
    o = views.get_order(sim.state, order_id)
    assert o is not None and o.lease
    lease = views.get_lease(sim.state, o.lease)
    assert lease is not None
    return lease


def fails_cleanly(sim: Sim, sender: KeyPair, tx_type: int, payload: Any, code: str) -> None:
    """The transaction fails with `code` and its block leaves state exactly as an empty block would, except for
    the fee (the sender's and the proposer's accounts). Comparing with an empty block, not with the state
    before, lets end_block's own bookkeeping (queues, timeouts) happen in both."""
    empty = sim.copy()
    empty.block()
    (receipt,) = sim.block((sender, tx_type, payload))
    assert receipt.code == errors.by_name(code).number, errors.by_number(receipt.code)
    assert receipt.fee == FEE
    a, b = dict(sim.state.items()), dict(empty.state.items())
    changed = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    assert changed <= {b"acct/" + sender.address, b"acct/" + PROPOSER.address}, changed


def assert_schedule_matches(state: State) -> None:
    """The cap's schedule (distinct end heights, units ending there in all and per operator) is what the active
    leases say."""
    ends: dict[str, Counter[int]] = {}
    per_op: Counter[tuple[str, int, bytes]] = Counter()
    for lease in views.leases(state, LeaseStatus.ACTIVE):
        ends.setdefault(lease.cls, Counter())[lease.end] += lease.units
        per_op[(lease.cls, lease.end, lease.operator)] += lease.units
    for cls in views.classes(state):
        want = ends.get(cls, Counter())
        assert concentration.scheduled_ends(state, cls) == sorted(want)
        for end, units in want.items():
            assert concentration.ending_at(state, cls, end) == units
    for (cls, end, op), units in per_op.items():
        assert concentration.ending_at(state, cls, end, op) == units
