"""Random market histories: escrow and bonds conserve value; the books agree with the leases.

Hypothesis drives post_order / bid / report_work / withdraw_pay / close_lease / cancel_order /
check_result / register_provider / post_offer / withdraw_offer / retire_provider, valid and invalid
mixed (strangers, wrong prices, closed windows, stale leases), with short report timeouts, certain
spot checks and large slashes, so leases end, close, time out, fail checks and orders reopen. After
every block: the total supply (balances, stakes, provider bonds, order escrow and every other holder)
is what genesis made; each provider's count of active leases, each class's leased units and the cap's
schedule of units by scheduled end height equal what the active leases say; an order holds at least what its
active lease owes. At the end, once every window and lease has run out, no escrow is left and an independent
replay gives the same state.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from ailedger.chain.genesis import Allocation
from ailedger.chain.state import State
from ailedger.market import payloads as p
from ailedger.market import views
from ailedger.market.book import CheckStatus, LeaseStatus, OrderStatus
from ailedger.market.concentration import total_units
from ailedger.market.resources import Resources
from tests.datanet_sim import PROPOSER, RUNTIME, Sim
from tests.market_sim import BOND, CPU, GPU, assert_schedule_matches, key, offer
from tests.models_sim import assert_replay_matches, total_supply

CONSUMERS = [key(500 + i) for i in range(2)]
PROVS = [key(600 + i) for i in range(5)]  # 0-1 one operator, 2-4 their own
KEYS = CONSUMERS + PROVS
PARAMS = {"market_report_timeout_blocks": 3, "market_check_min_bps": 5_000, "market_check_max_bps": 10_000,
          "market_check_timeout_blocks": 2, "market_slash_bps": 3_000, "market_check_miss_bps": 1_000,
          "market_share_floor_units": 32, "market_max_window_blocks": 3, "market_max_duration_blocks": 8,
          "reputation_half_life_blocks": 50}

ref = st.integers(0, 5)
prov = st.integers(0, len(PROVS) - 1)
consumer = st.integers(0, len(CONSUMERS) - 1)
needs = st.sampled_from([CPU, CPU, GPU, Resources(2, 4, "", 0, "")])
ops = st.one_of(
    st.tuples(st.just("order"), consumer, needs, st.sampled_from([1, 1, 2]), st.sampled_from([5, 50, 0]),
              st.integers(1, 6), st.integers(1, 3), st.sampled_from([0, 0, -1, 100])),
    st.tuples(st.just("bid"), prov, ref, st.sampled_from([1, 5, 40, 50, 51])),
    st.tuples(st.just("bid"), prov, ref, st.sampled_from([1, 5, 40, 50, 51])),
    st.tuples(st.just("report"), prov, ref, st.sampled_from([0, 0, 500, 10**6])),
    st.tuples(st.just("report"), prov, ref, st.sampled_from([0, 0, 500, 10**6])),
    st.tuples(st.just("withdraw"), prov, ref),
    st.tuples(st.just("close"), consumer, ref),
    st.tuples(st.just("cancel"), consumer, ref),
    st.tuples(st.just("check"), prov, ref, st.sampled_from([1, 1, 0])),
    st.tuples(st.just("register"), prov, st.sampled_from([1, BOND])),
    st.tuples(st.just("offer"), prov, st.booleans()),
    st.tuples(st.just("retire"), prov),
)
# the right party (-1): the lease's own provider or consumer, the check's own verifier
own = st.one_of(
    st.tuples(st.just("report"), st.just(-1), st.integers(0, 2), st.sampled_from([0, 0, 700])),
    st.tuples(st.just("withdraw"), st.just(-1), st.integers(0, 2)),
    st.tuples(st.just("close"), st.just(-1), st.integers(0, 4)),
    st.tuples(st.just("check"), st.just(-1), st.integers(0, 2), st.sampled_from([1, 0])),
    st.tuples(st.just("check"), st.just(-1), st.integers(0, 2), st.sampled_from([1, 0])),
)
# an order and bids on it in the same block (its id is the next one)
life = st.builds(lambda order, bids: [order, *[("bid", b, -1, price) for b, price in bids]],
                 st.tuples(st.just("order"), consumer, needs, st.sampled_from([1, 1, 2]), st.just(50),
                           st.integers(2, 8), st.integers(1, 3), st.just(0)),
                 st.lists(st.tuples(prov, st.sampled_from([5, 20, 50])), min_size=1, max_size=4))
blocks = st.builds(lambda lives, mine, rest: [op for life_ops in lives for op in life_ops] + mine + rest,
                   st.lists(life, max_size=2), st.lists(own, max_size=6), st.lists(ops, max_size=4))
plans = st.lists(blocks, min_size=2, max_size=10)


def _pick(items: list[int], i: int) -> int:
    return items[-1 - i % len(items)] if items and i < 5 else 10_000 + i


def _party(address: bytes) -> Any:
    return next(k for k in KEYS if k.address == address)


def to_tx(state: State, op: tuple[Any, ...], posted: int) -> tuple[Any, int, Any]:
    """`posted`: orders already posted in this block before this op (a bid with ref -1 takes the newest)."""
    kind = op[0]
    order_ids = [o.id for o in views.orders(state)]
    lease_ids = [lease.id for lease in views.leases(state)]
    if op[1] == -1 and kind in ("report", "withdraw", "close"):
        lease = views.get_lease(state, _pick(lease_ids, op[2])) if lease_ids else None
        if lease is None:
            return CONSUMERS[0], p.CLOSE_LEASE, p.LeaseRef(10**6)
        sender = _party(lease.consumer if kind == "close" else lease.provider)
        if kind == "report":
            return sender, p.REPORT_WORK, p.ReportWork(lease.id, b"\x09" * 32, op[3] if lease.unit == 2 else 0)
        return sender, p.WITHDRAW_PAY if kind == "withdraw" else p.CLOSE_LEASE, p.LeaseRef(lease.id)
    if op[1] == -1 and kind == "check":
        pending = views.checks(state, 0)
        if not pending:
            return CONSUMERS[0], p.CHECK_RESULT, p.CheckResult(10**6, 1, b"\x0a" * 32)
        c = pending[op[2] % len(pending)]
        return _party(c.verifier), p.CHECK_RESULT, p.CheckResult(c.id, op[3], b"\x0a" * 32)
    if kind == "bid" and op[2] == -1:
        return PROVS[op[1]], p.BID, p.Bid(len(order_ids) + posted, op[3])
    if kind == "order":
        _, c, res, unit, price, duration, window, extra = op
        budget = price * duration + extra if unit == 1 else 1_000 + max(extra, 0)
        return CONSUMERS[c], p.POST_ORDER, p.PostOrder(1 if unit == 1 else 2, b"\x05" * 32, res, unit, price,
                                                       max(budget, 0), window, duration)
    if kind == "bid":
        return PROVS[op[1]], p.BID, p.Bid(_pick(order_ids, op[2]), op[3])
    if kind == "report":
        return PROVS[op[1]], p.REPORT_WORK, p.ReportWork(_pick(lease_ids, op[2]), b"\x09" * 32, op[3])
    if kind == "withdraw":
        return PROVS[op[1]], p.WITHDRAW_PAY, p.LeaseRef(_pick(lease_ids, op[2]))
    if kind == "close":
        return CONSUMERS[op[1]], p.CLOSE_LEASE, p.LeaseRef(_pick(lease_ids, op[2]))
    if kind == "cancel":
        return CONSUMERS[op[1]], p.CANCEL_ORDER, p.OrderRef(_pick(order_ids, op[2]))
    if kind == "check":
        check_ids = [c.id for c in views.checks(state)]
        return PROVS[op[1]], p.CHECK_RESULT, p.CheckResult(_pick(check_ids, op[2]), op[3], b"\x0a" * 32)
    if kind == "register":
        return PROVS[op[1]], p.REGISTER_PROVIDER, p.RegisterProvider(bytes(20), op[2])
    if kind == "offer":
        return PROVS[op[1]], p.POST_OFFER if op[2] else p.WITHDRAW_OFFER, offer() if op[2] else p.NoArgs()
    return PROVS[op[1]], p.RETIRE_PROVIDER, p.NoArgs()


def check_books(state: State, total: int) -> None:
    assert total_supply(state) == total
    active = views.leases(state, LeaseStatus.ACTIVE)
    per_provider = Counter(lease.provider for lease in active)
    pending = views.checks(state, CheckStatus.PENDING)
    owes = Counter([c.verifier for c in pending] + [c.provider for c in pending])
    for pr in views.providers(state):
        assert pr.active_leases == per_provider[pr.address] and pr.pending_checks == owes[pr.address]
    units: Counter[str] = Counter()
    for lease in active:
        units[lease.cls] += lease.units
        order = views.get_order(state, lease.order)
        assert order is not None and order.status == OrderStatus.LEASED and order.escrow >= views.owed(lease)
    for cls in views.classes(state):
        assert total_units(state, cls) == units[cls]
    assert_schedule_matches(state)  # the cap's look-ahead schedule, after every kind of lease end


@settings(max_examples=120, deadline=None)
@given(plan=plans)
def test_random_market_histories_conserve_escrow_and_bonds(plan: list[list[tuple[Any, ...]]]) -> None:
    sim = Sim([Allocation(k.address, 10**10) for k in KEYS], PARAMS)
    total = total_supply(sim.state)
    operator = key(700).address
    sim.ok(*[(k, p.REGISTER_PROVIDER, p.RegisterProvider(operator if i < 2 else bytes(20), BOND))
             for i, k in enumerate(PROVS)])
    sim.ok(*[(k, p.POST_OFFER, offer()) for k in PROVS])
    for block_ops in [*plan, *[[]] * 16]:  # trailing blocks let every window, lease and check run out
        pending: Counter[bytes] = Counter()
        txs, posted = [], 0
        for op in block_ops:
            posted += op[0] == "order"
            txs.append(sim.tx(*to_tx(sim.state, op, posted), pending=pending))
        built = RUNTIME.build_block(sim.state, sim.parent, sim.parent.timestamp_ms + 1, PROPOSER, txs)
        assert built.block is not None and not built.rejected
        sim.parent = built.block.header
        sim.blocks.append(built.block)
        check_books(sim.state, total)
    assert all(o.escrow == 0 for o in views.orders(sim.state))
    assert not views.leases(sim.state, LeaseStatus.ACTIVE)
    for lease in views.leases(sim.state):
        event(f"lease {lease.status}")  # --hypothesis-show-statistics shows which endings the runs reached
    for c in views.checks(sim.state):
        event(f"check {c.status}")
    for order in views.orders(sim.state):
        event(f"order {order.status} reopened {min(order.reopened, 1)}")
    assert_replay_matches(sim)
