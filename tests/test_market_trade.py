"""The compute market on the real state machine: auctions, leases, pay, timeouts, spot checks, the cap, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from ailedger.market import payloads as p
from ailedger.market import views
from ailedger.market.book import CheckStatus, LeaseStatus, OrderStatus
from ailedger.market.checks import rate_bps
from ailedger.market.resources import Resources
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role
from tests.market_sim import (
    BOND,
    CONSUMER,
    GPU,
    OTHER,
    PROVIDERS,
    fails_cleanly,
    key,
    last_order,
    lease_of,
    market,
    offer,
    order,
)
from tests.models_sim import assert_replay_matches, total_supply

SUPPLY = 8 * 10**12
DIGEST = b"\x01" * 32


def posted(sim: Any, **kw: Any) -> int:
    sim.ok((CONSUMER, p.POST_ORDER, order(**kw)))
    return last_order(sim)


def test_lowest_bid_wins_is_paid_for_reported_blocks_and_the_rest_is_refunded() -> None:
    sim = market()
    oid = posted(sim, max_price=100, duration=10, window=2)
    sim.ok((PROVIDERS[0], p.BID, p.Bid(oid, 40)), (PROVIDERS[1], p.BID, p.Bid(oid, 30)),
           (PROVIDERS[2], p.BID, p.Bid(oid, 35)))
    sim.until(views.get_order(sim.state, oid).window_end)  # type: ignore[union-attr]
    lease = lease_of(sim, oid)
    assert lease.provider == PROVIDERS[1].address and lease.price == 30 and lease.end == lease.start + 10
    for _ in range(4):
        sim.ok((PROVIDERS[1], p.REPORT_WORK, p.ReportWork(lease.id, DIGEST, 0)))
    assert views.owed(views.get_lease(sim.state, lease.id)) == 4 * 30  # type: ignore[arg-type]
    before = sim.balance(PROVIDERS[1])
    sim.ok((PROVIDERS[1], p.WITHDRAW_PAY, p.LeaseRef(lease.id)))
    assert sim.balance(PROVIDERS[1]) == before - 1_000 + 120
    sim.until(lease.end)  # no more reports: the unreported blocks are refunded at the end
    done = views.get_lease(sim.state, lease.id)
    assert done is not None and done.status == LeaseStatus.ENDED and done.paid == 120
    o = views.get_order(sim.state, oid)
    assert o is not None and o.status == OrderStatus.DONE and o.escrow == 0
    assert total_supply(sim.state) == SUPPLY
    assert_replay_matches(sim)


def test_equal_bids_go_to_the_higher_reputation_then_the_lower_address() -> None:
    sim = market()
    good = PROVIDERS[3]
    oid = posted(sim, window=1)
    sim.ok((good, p.BID, p.Bid(oid, 50)))
    sim.until(sim.height + 1)
    lease = lease_of(sim, oid)
    sim.until(lease.end)  # never reported: paid nothing, but the lease ran, so reputation rises
    assert reputation.score_bps(sim.state, good.address, Role.COMPUTE_PROVIDER, sim.height) > 5_000
    oid = posted(sim, window=1)
    sim.ok(*[(k, p.BID, p.Bid(oid, 50)) for k in PROVIDERS])
    sim.until(sim.height + 1)
    assert lease_of(sim, oid).provider == good.address
    oid = posted(sim, window=1)
    others = [k for k in PROVIDERS if k is not good]
    sim.ok(*[(k, p.BID, p.Bid(oid, 50)) for k in others])
    sim.until(sim.height + 1)
    assert lease_of(sim, oid).provider == min(k.address for k in others)


def test_a_bid_that_would_break_the_operator_cap_loses_to_the_next_valid_bid() -> None:
    # providers 0..2 belong to one operator; the cap is 25% of max(leased units, floor 8) = 2 of 8 cpu cores
    sim = market({"market_share_floor_units": 8}, operators=[0, 0, 0, 3, 4, 5])
    small = Resources(2, 4, "", 0, "")
    first = posted(sim, needs=small, window=1)
    sim.ok((PROVIDERS[0], p.BID, p.Bid(first, 10)))
    sim.until(sim.height + 1)
    assert lease_of(sim, first).provider == PROVIDERS[0].address
    second = posted(sim, needs=small, window=1)
    sim.ok((PROVIDERS[1], p.BID, p.Bid(second, 5)), (PROVIDERS[4], p.BID, p.Bid(second, 60)))
    sim.until(sim.height + 1)
    assert lease_of(sim, second).provider == PROVIDERS[4].address  # the cheaper bid is the big operator's
    stat = views.share_now(sim.state, "cpu", sim.height)
    assert stat.top_share_bps == 2_500 and stat.total_units == 4 and stat.operators == 2
    rows = views.stat_history(sim.state, "cpu", 0, sim.height)
    assert [r.top_share_bps for r in rows] == [2_500, 2_500] and rows[-1].hhi == 625 + 625


def test_no_valid_bid_expires_the_order_and_refunds_the_escrow() -> None:
    sim = market()
    before = sim.balance(CONSUMER)
    oid = posted(sim, needs=Resources(64, 512, "", 0, ""), window=2)  # no offer has 64 cores
    sim.until(sim.height + 2)
    o = views.get_order(sim.state, oid)
    assert o is not None and o.status == OrderStatus.EXPIRED and o.escrow == 0
    assert sim.balance(CONSUMER) == before - 1_000


def test_a_silent_provider_times_out_is_slashed_and_the_order_reopens_for_the_rest() -> None:
    sim = market({"market_report_timeout_blocks": 3, "market_slash_bps": 1_000})
    oid = posted(sim, max_price=100, duration=20, window=1)
    sim.ok((PROVIDERS[0], p.BID, p.Bid(oid, 40)))
    sim.until(sim.height + 1)
    lease = lease_of(sim, oid)
    sim.ok((PROVIDERS[0], p.REPORT_WORK, p.ReportWork(lease.id, DIGEST, 0)))
    consumer_before = sim.balance(CONSUMER)
    sim.until(sim.height + 3)
    failed = views.get_lease(sim.state, lease.id)
    assert failed is not None and failed.status == LeaseStatus.TIMED_OUT and failed.paid == 0  # forfeited 40
    assert views.get_provider(sim.state, PROVIDERS[0].address).bond == BOND - BOND // 10  # type: ignore[union-attr]
    assert sim.balance(CONSUMER) == consumer_before + BOND // 10
    assert reputation.score_bps(sim.state, PROVIDERS[0].address, Role.COMPUTE_PROVIDER, sim.height) < 5_000
    o = views.get_order(sim.state, oid)
    assert o is not None and o.status == OrderStatus.BIDDING and o.reopened == 1 and o.escrow == 2_000
    assert o.duration == lease.end - failed.closed
    sim.ok((PROVIDERS[1], p.BID, p.Bid(oid, 60)))
    sim.until(o.window_end)
    assert lease_of(sim, oid).provider == PROVIDERS[1].address
    assert total_supply(sim.state) == SUPPLY
    assert_replay_matches(sim)


def test_the_consumer_closes_early_reported_work_is_paid_the_rest_refunded() -> None:
    sim = market()
    oid = posted(sim, max_price=100, duration=10, window=1)
    sim.ok((PROVIDERS[0], p.BID, p.Bid(oid, 100)))
    sim.until(sim.height + 1)
    lease = lease_of(sim, oid)
    sim.ok((PROVIDERS[0], p.REPORT_WORK, p.ReportWork(lease.id, DIGEST, 0)))
    sim.ok((PROVIDERS[0], p.REPORT_WORK, p.ReportWork(lease.id, DIGEST, 0)))
    before = sim.balance(CONSUMER)
    sim.ok((CONSUMER, p.CLOSE_LEASE, p.LeaseRef(lease.id)))
    closed = views.get_lease(sim.state, lease.id)
    assert closed is not None and closed.status == LeaseStatus.CLOSED
    assert closed.paid == 100 * (closed.last_report - lease.start)  # a report covers the blocks since the last one
    assert sim.balance(CONSUMER) == before - 1_000 + 1_000 - closed.paid
    assert views.get_provider(sim.state, PROVIDERS[0].address).active_leases == 0  # type: ignore[union-attr]
    assert views.share_now(sim.state, "cpu", sim.height).total_units == 0


def test_per_token_leases_pay_floor_of_tokens_times_price_and_cannot_overdraw() -> None:
    sim = market()
    oid = posted(sim, unit=p.Unit.KTOKENS, max_price=30, budget=10_000, needs=GPU)
    sim.ok((PROVIDERS[0], p.BID, p.Bid(oid, 7)))
    sim.until(sim.height + 2)
    lease = lease_of(sim, oid)
    sim.ok((PROVIDERS[0], p.REPORT_WORK, p.ReportWork(lease.id, DIGEST, 1_500)))
    assert views.owed(views.get_lease(sim.state, lease.id)) == 10  # type: ignore[arg-type]  # floor(1500 * 7 / 1000)
    fails_cleanly(sim, PROVIDERS[0], p.REPORT_WORK, p.ReportWork(lease.id, DIGEST, 2_000_000),
                         "escrow_insufficient")
    sim.ok((PROVIDERS[0], p.REPORT_WORK, p.ReportWork(lease.id, DIGEST, 0)))  # a period without requests
    assert views.owed(views.get_lease(sim.state, lease.id)) == 10  # type: ignore[arg-type]
    assert total_supply(sim.state) == SUPPLY


def _checked_lease(params: dict[str, int]) -> tuple[Any, Any, Any]:
    sim = market({"market_check_min_bps": 10_000, "market_check_max_bps": 10_000, **params})
    oid = posted(sim, window=1, duration=30)
    sim.ok((PROVIDERS[0], p.BID, p.Bid(oid, 50)))
    sim.until(sim.height + 1)
    lease = lease_of(sim, oid)
    sim.ok((PROVIDERS[0], p.REPORT_WORK, p.ReportWork(lease.id, DIGEST, 0)))
    sim.until(sim.height + 1)  # drawn at the end of the next block, with its seed
    (check,) = views.checks(sim.state)
    assert check.lease == lease.id and check.digest == DIGEST and check.verifier != PROVIDERS[0].address
    return sim, lease, check


def _key_of(address: bytes) -> Any:
    return next(k for k in PROVIDERS if k.address == address)


def test_a_passed_check_raises_both_reputations_a_failed_one_slashes_and_reopens() -> None:
    sim, lease, check = _checked_lease({})
    verifier = _key_of(check.verifier)
    fails_cleanly(sim, PROVIDERS[0], p.CHECK_RESULT, p.CheckResult(check.id, 1, DIGEST), "not_check_verifier")
    sim.ok((verifier, p.CHECK_RESULT, p.CheckResult(check.id, 1, DIGEST)))
    assert views.get_check(sim.state, check.id).status == CheckStatus.PASSED  # type: ignore[union-attr]
    for k in (PROVIDERS[0], verifier):
        assert reputation.score_bps(sim.state, k.address, Role.COMPUTE_PROVIDER, sim.height) > 5_000
    sim, lease, check = _checked_lease({})
    sim.ok((_key_of(check.verifier), p.CHECK_RESULT, p.CheckResult(check.id, 0, b"\x02" * 32)))
    failed = views.get_lease(sim.state, lease.id)
    assert failed is not None and failed.status == LeaseStatus.FAILED_CHECK
    assert views.get_provider(sim.state, PROVIDERS[0].address).bond < BOND  # type: ignore[union-attr]
    assert views.get_order(sim.state, lease.order).status == OrderStatus.BIDDING  # type: ignore[union-attr]
    assert total_supply(sim.state) == SUPPLY


def test_an_unanswered_check_is_the_verifiers_fault() -> None:
    sim, lease, check = _checked_lease({"market_check_timeout_blocks": 2, "market_check_miss_bps": 500})
    sim.until(check.deadline)
    assert views.get_check(sim.state, check.id).status == CheckStatus.MISSED  # type: ignore[union-attr]
    assert views.get_provider(sim.state, check.verifier).bond == BOND - BOND * 500 // 10_000  # type: ignore[union-attr]
    assert views.get_provider(sim.state, PROVIDERS[0].address).bond == BOND  # type: ignore[union-attr]
    assert views.get_lease(sim.state, lease.id).status == LeaseStatus.ACTIVE  # type: ignore[union-attr]


def test_the_check_rate_falls_linearly_with_reputation() -> None:
    assert [rate_bps(200, 5_000, r) for r in (0, 5_000, 10_000)] == [5_000, 2_600, 200]


def test_retire_returns_the_bond_only_without_leases() -> None:
    sim = market()
    oid = posted(sim, window=1)
    sim.ok((PROVIDERS[0], p.BID, p.Bid(oid, 50)))
    sim.until(sim.height + 1)
    fails_cleanly(sim, PROVIDERS[0], p.RETIRE_PROVIDER, p.NoArgs(), "provider_has_leases")
    before = sim.balance(PROVIDERS[1])
    sim.ok((PROVIDERS[1], p.RETIRE_PROVIDER, p.NoArgs()))
    assert sim.balance(PROVIDERS[1]) == before - 1_000 + BOND


# -- bad input: a coded error and state as it was ------------------------------------------------

@pytest.fixture
def bidding() -> tuple[Any, int]:
    sim = market({"market_cost_floor_per_block": 10})
    return sim, posted(sim, max_price=100, duration=10, window=3)


@pytest.mark.parametrize(("who", "tx_type", "payload", "code"), [
    (0, p.BID, p.Bid(1, 9), "bid_below_floor"),
    (0, p.BID, p.Bid(1, 101), "bid_above_max"),
    ("consumer", p.BID, p.Bid(1, 50), "own_order"),
    ("other", p.BID, p.Bid(1, 50), "provider_not_registered"),
    (0, p.BID, p.Bid(99, 50), "order_not_found"),
    ("other", p.CANCEL_ORDER, p.OrderRef(1), "not_lease_party"),
    ("consumer", p.POST_ORDER, order(max_price=100, duration=10, budget=999), "escrow_insufficient"),
    ("consumer", p.POST_ORDER, order(spec_hash=bytes(32)), "market_bad_order"),
    ("consumer", p.POST_ORDER, order(window=5_000), "market_bad_order"),
    ("consumer", p.POST_ORDER, order(needs=Resources(1, 1, "h100", 0, "")), "market_bad_order"),
    ("consumer", p.POST_ORDER, order(budget=10**15), "insufficient_balance"),
    (0, p.POST_OFFER, offer(Resources(1, 1, "BAD MODEL", 1, "")), "market_bad_offer"),
    ("other", p.REGISTER_PROVIDER, p.RegisterProvider(bytes(20), 10), "provider_bond_too_low"),
    ("other", p.POST_OFFER, offer(), "provider_not_registered"),
])
def test_bad_market_input_fails_cleanly(bidding: tuple[Any, int], who: Any, tx_type: int, payload: Any,
                                        code: str) -> None:
    sim, _ = bidding
    sender = CONSUMER if who == "consumer" else OTHER if who == "other" else PROVIDERS[who]
    fails_cleanly(sim, sender, tx_type, payload, code)


def test_an_unbonded_provider_cannot_bid(bidding: tuple[Any, int]) -> None:
    sim, oid = bidding
    sim.ok((PROVIDERS[5], p.RETIRE_PROVIDER, p.NoArgs()))
    fails_cleanly(sim, PROVIDERS[5], p.BID, p.Bid(oid, 50), "provider_bond_too_low")


def test_an_offer_that_does_not_cover_cannot_bid() -> None:
    sim = market()
    oid = posted(sim, needs=Resources(4, 16, "a100", 1, ""))
    fails_cleanly(sim, PROVIDERS[0], p.BID, p.Bid(oid, 50), "offer_does_not_cover")


def test_a_second_bid_is_refused_and_a_bid_after_the_window_too(bidding: tuple[Any, int]) -> None:
    sim, oid = bidding
    sim.ok((PROVIDERS[0], p.BID, p.Bid(oid, 50)))
    fails_cleanly(sim, PROVIDERS[0], p.BID, p.Bid(oid, 40), "duplicate_bid")
    sim.until(views.get_order(sim.state, oid).window_end)  # type: ignore[union-attr]
    fails_cleanly(sim, PROVIDERS[1], p.BID, p.Bid(oid, 40), "order_not_bidding")


def test_an_order_takes_at_most_market_max_bids_per_order() -> None:
    sim = market({"market_max_bids_per_order": 2})
    oid = posted(sim, window=3)
    sim.ok((PROVIDERS[0], p.BID, p.Bid(oid, 50)), (PROVIDERS[1], p.BID, p.Bid(oid, 60)))
    fails_cleanly(sim, PROVIDERS[2], p.BID, p.Bid(oid, 10), "order_bids_full")


def test_strangers_cannot_act_on_a_lease(bidding: tuple[Any, int]) -> None:
    sim, oid = bidding
    sim.ok((PROVIDERS[0], p.BID, p.Bid(oid, 50)))
    sim.until(views.get_order(sim.state, oid).window_end)  # type: ignore[union-attr]
    lid = lease_of(sim, oid).id
    stranger = PROVIDERS[1]
    for tx_type, payload in [(p.REPORT_WORK, p.ReportWork(lid, DIGEST, 0)), (p.WITHDRAW_PAY, p.LeaseRef(lid)),
                             (p.CLOSE_LEASE, p.LeaseRef(lid))]:
        fails_cleanly(sim, stranger, tx_type, payload, "not_lease_party")
    fails_cleanly(sim, PROVIDERS[0], p.CLOSE_LEASE, p.LeaseRef(lid), "not_lease_party")
    fails_cleanly(sim, CONSUMER, p.REPORT_WORK, p.ReportWork(lid, DIGEST, 0), "not_lease_party")
    fails_cleanly(sim, PROVIDERS[0], p.REPORT_WORK, p.ReportWork(99, DIGEST, 0), "lease_not_found")
    fails_cleanly(sim, PROVIDERS[0], p.REPORT_WORK, p.ReportWork(lid, bytes(32), 0), "market_bad_report")
    fails_cleanly(sim, PROVIDERS[0], p.REPORT_WORK, p.ReportWork(lid, DIGEST, 5), "market_bad_report")
    fails_cleanly(sim, OTHER, p.CHECK_RESULT, p.CheckResult(7, 1, DIGEST), "check_not_found")


def test_operator_is_declared_per_identity() -> None:
    sim = market(operators=[0, 0, 1, 2, 3, 4])
    ops = {p_.address: p_.operator for p_ in views.providers(sim.state)}
    assert ops[PROVIDERS[0].address] == ops[PROVIDERS[1].address] == key(100).address
    assert ops[PROVIDERS[2].address] != ops[PROVIDERS[0].address]


def test_a_check_on_an_ended_lease_still_slashes_and_locks_the_bond_until_answered() -> None:
    sim, lease, check = _checked_lease({"market_check_timeout_blocks": 50, "market_report_timeout_blocks": 100})
    sim.until(lease.end)  # the lease runs out while its check is pending
    assert views.get_lease(sim.state, lease.id).status == LeaseStatus.ENDED  # type: ignore[union-attr]
    fails_cleanly(sim, PROVIDERS[0], p.RETIRE_PROVIDER, p.NoArgs(), "provider_has_leases")
    consumer_before = sim.balance(CONSUMER)
    sim.ok((_key_of(check.verifier), p.CHECK_RESULT, p.CheckResult(check.id, 0, b"\x02" * 32)))
    assert views.get_provider(sim.state, PROVIDERS[0].address).bond == BOND - BOND // 10  # type: ignore[union-attr]
    assert sim.balance(CONSUMER) == consumer_before + BOND // 10
    sim.ok((PROVIDERS[0], p.RETIRE_PROVIDER, p.NoArgs()))
    assert total_supply(sim.state) == SUPPLY
