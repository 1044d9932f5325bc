"""The concentration cap over time: a lease opens only if its operator stays within the cap at every block of
the lease's life while the class's other leases end on schedule (concentration.allows, docs/market.md
"Concentration"); an early end can still lift a share above the cap, and the operator then wins nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from ailedger.chain.state import State
from ailedger.market import concentration, views
from ailedger.market import payloads as p
from ailedger.market.book import LeaseStatus
from ailedger.market.resources import Resources
from tests.market_sim import CONSUMER, PROVIDERS, assert_schedule_matches, last_order, lease_of, market, order
from tests.models_sim import assert_replay_matches

A, B, C, D, E, F = PROVIDERS  # each its own operator
BIG = Resources(8, 16, "", 0, "")  # 8 cpu units
SMALL = Resources(2, 4, "", 0, "")  # 2 cpu units
BPS = 10_000
CAP = 2_500
LONG = 40


def post(sim: Any, needs: Resources, duration: int) -> int:
    sim.ok((CONSUMER, p.POST_ORDER, order(needs=needs, duration=duration, window=1)))
    return last_order(sim)


def capped() -> tuple[Any, dict[str, int]]:
    """B holds 8 cpu units until a short lease's end; C, D, E 8 each for LONG blocks; then A takes 8 for LONG
    blocks: 8 of 40 (20%) now, 8 of 32 (exactly the cap) once B's lease ends on schedule."""
    sim = market({"market_share_floor_units": 32, "market_report_timeout_blocks": 1_000})
    first = last_order(sim) + 1
    sim.ok(*[(CONSUMER, p.POST_ORDER, order(needs=BIG, duration=d, window=1)) for d in (12, LONG, LONG, LONG)])
    sim.ok(*[(k, p.BID, p.Bid(first + i, 50)) for i, k in enumerate((B, C, D, E))])
    ids = {name: first + i for i, name in enumerate("BCDE")}
    assert [lease_of(sim, ids[n]).provider for n in "BCDE"] == [B.address, C.address, D.address, E.address]
    ids["A"] = post(sim, BIG, LONG)
    sim.ok((A, p.BID, p.Bid(ids["A"], 50)))
    assert lease_of(sim, ids["A"]).provider == A.address
    ids["b_end"] = lease_of(sim, ids["B"]).end
    return sim, ids


def active_shares(state: State) -> dict[str, tuple[Counter[bytes], int]]:
    """Per class, the units of every operator and in all, from the active leases themselves (not the counters)."""
    out: dict[str, tuple[Counter[bytes], int]] = {}
    for lease in views.leases(state, LeaseStatus.ACTIVE):
        ops, total = out.get(lease.cls, (Counter(), 0))
        ops[lease.operator] += lease.units
        out[lease.cls] = (ops, total + lease.units)
    return out


def assert_within(state: State, cap: int, floor: int) -> None:
    for cls, (ops, total) in active_shares(state).items():
        for units in ops.values():
            assert units * BPS <= cap * max(total, floor), (cls, units, total)


def test_a_bid_that_would_pass_the_cap_after_scheduled_ends_loses_and_the_drain_stays_capped() -> None:
    sim, ids = capped()
    y = post(sim, SMALL, LONG)
    sim.ok((A, p.BID, p.Bid(y, 5)), (F, p.BID, p.Bid(y, 30)))
    # the open-time rule alone would take A's cheaper bid: 10 of 42 = 23.8% now, but 10 of 34 = 29.4% once B's
    # lease ends on schedule (and 10 of max(10, 32) = 31% when C, D and E end), so it loses to F's
    lease = lease_of(sim, y)
    assert lease.provider == F.address and lease.price == 30
    # a lease that ends no later than B's never sees the smaller total, so A wins it: 10 of 44 = 22.7%
    z = post(sim, SMALL, ids["b_end"] - (sim.height + 2))  # posted next block, opens the one after
    sim.ok((A, p.BID, p.Bid(z, 5)), (F, p.BID, p.Bid(z, 30)))
    short = lease_of(sim, z)
    assert short.provider == A.address and short.end == ids["b_end"]
    start = sim.height
    while views.leases(sim.state, LeaseStatus.ACTIVE):  # the drain: every lease ends on schedule, no new demand
        sim.until(sim.height + 1)
        assert views.share_now(sim.state, "cpu", sim.height).top_share_bps <= CAP
        assert_within(sim.state, CAP, 32)
        assert_schedule_matches(sim.state)
    rows = views.stat_history(sim.state, "cpu", 0, sim.height)
    assert rows and max(r.top_share_bps for r in rows) == CAP  # A at exactly 8 of 32 once C, D, E are gone
    assert [r.top_share_bps for r in rows if r.height > start]  # the drain was recorded
    assert concentration.scheduled_ends(sim.state, "cpu") == []
    assert_replay_matches(sim)


def test_an_early_close_can_lift_a_share_above_the_cap_and_the_operator_then_wins_nothing() -> None:
    sim, ids = capped()
    z = post(sim, SMALL, ids["b_end"] - (sim.height + 2))  # A's extra lease, ending with B's
    sim.ok((A, p.BID, p.Bid(z, 5)))
    assert lease_of(sim, z).provider == A.address
    sim.ok((CONSUMER, p.CLOSE_LEASE, p.LeaseRef(lease_of(sim, ids["C"]).id)))  # C's lease ends early
    stat = views.share_now(sim.state, "cpu", sim.height)
    assert stat.top_operator == lease_of(sim, ids["A"]).operator and stat.top_share_bps == 10 * BPS // 34 > CAP
    assert views.stat_history(sim.state, "cpu", sim.height, sim.height)[0].top_share_bps > CAP  # reported honestly
    first = last_order(sim) + 1  # A is above the cap now: it wins neither a one-block lease nor a long one
    sim.ok(*[(CONSUMER, p.POST_ORDER, order(needs=SMALL, duration=d, window=1)) for d in (1, LONG)])
    sim.ok(*[(k, p.BID, p.Bid(o, price)) for o in (first, first + 1) for k, price in ((A, 5), (F, 30))])
    assert sim.height < ids["b_end"]
    assert [lease_of(sim, o).provider for o in (first, first + 1)] == [F.address, F.address]
    assert_schedule_matches(sim.state)
    assert_replay_matches(sim)


# -- the property: no early ends, any orders and bids, the cap holds at every block ----------------------------

NEEDS = [Resources(1, 4, "", 0, ""), Resources(2, 4, "", 0, ""), Resources(4, 4, "", 0, ""),
         Resources(8, 4, "", 0, ""), Resources(4, 16, "h100", 1, ""), Resources(4, 16, "h100", 2, "")]
life = st.tuples(st.integers(0, len(NEEDS) - 1), st.sampled_from([1, 2, 4, 8, 12]), st.integers(1, 3),
                 st.lists(st.tuples(st.integers(0, 5), st.sampled_from([5, 20, 50, 100])), min_size=1, max_size=4))
late_bid = st.tuples(st.integers(0, 5), st.integers(0, 4), st.sampled_from([5, 50]))
blocks = st.tuples(st.lists(life, min_size=1, max_size=4), st.lists(late_bid, max_size=3))


@settings(max_examples=150, deadline=None)
@given(cap=st.sampled_from([2_500, 3_400, 5_000]), floor=st.sampled_from([4, 8, 16]),
       plan=st.lists(blocks, min_size=1, max_size=12))
def test_without_early_ends_no_operator_passes_the_cap_at_any_block(
        cap: int, floor: int, plan: list[tuple[list[Any], list[Any]]]) -> None:
    # providers 0-1 and 2-3 are two operators, 4 and 5 their own; no checks and no report timeouts, so every
    # lease ends on schedule
    sim = market({"market_max_operator_share_bps": cap, "market_share_floor_units": floor,
                  "market_report_timeout_blocks": 1_000}, operators=[0, 0, 1, 1, 2, 3])
    for lives, late in [*plan, *[([], [])] * 16]:
        n = last_order(sim)
        txs: list[tuple[Any, int, Any]] = []
        for i, (need, duration, window, bids) in enumerate(lives):
            txs.append((CONSUMER, p.POST_ORDER, order(needs=NEEDS[need], duration=duration, window=window)))
            txs += [(PROVIDERS[k], p.BID, p.Bid(n + i + 1, price)) for k, price in bids]
        txs += [(PROVIDERS[k], p.BID, p.Bid(max(1, n - back), price)) for k, back, price in late]
        sim.block(*txs)  # some bids fail (duplicates, closed windows): that is part of the history
        assert_within(sim.state, cap, floor)
        for cls in views.classes(sim.state):
            assert views.share_now(sim.state, cls, sim.height).top_share_bps <= cap
        assert_schedule_matches(sim.state)
    assert not views.leases(sim.state, LeaseStatus.ACTIVE)
    top = 0
    for cls in views.classes(sim.state):
        rows = views.stat_history(sim.state, cls, 0, sim.height)
        assert all(r.top_share_bps <= cap for r in rows)
        top = max([top, *(r.top_share_bps for r in rows)])
    event(f"leases {min(len(views.leases(sim.state)), 20) // 5 * 5}+")  # --hypothesis-show-statistics
    event("a share reached the cap" if top == cap else "below the cap")
