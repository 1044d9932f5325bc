"""Governance on a real chain: the lifecycle of each kind, the tally's outcomes and the fate of deposits,
weights fixed at the block voting opened, the timelock, and every refusal leaving state as it was.

The world (tests/governance_sim.py): Alice, Bob and Carol have 50, 30 and 20 units bonded at genesis
(100 in all), Dave none; gov_min_deposit is 10 units, the deposit period 4 blocks, the voting period 3
blocks after the opening block, the timelock 2 blocks; quorum 33.4 %, threshold 50 %, veto 33.4 %.
"""

from __future__ import annotations

from ailedger.chain import params
from ailedger.chain.accounts import STAKE, UNSTAKE, Amount
from ailedger.core import errors
from ailedger.governance import payloads as g
from ailedger.governance import txs, views
from ailedger.governance.state import Status
from tests.datanet_sim import Sim
from tests.governance_sim import (
    ALICE,
    ALLOC,
    BOB,
    CAROL,
    DAVE,
    MIN_DEPOSIT,
    UNIT,
    change,
    header,
    spend,
    text,
    vote,
    world,
)
from tests.models_sim import assert_fails_cleanly, assert_replay_matches, total_supply

YES, NO, ABSTAIN, VETO = g.Option.YES, g.Option.NO, g.Option.ABSTAIN, g.Option.VETO


def test_parameter_change_passes_waits_for_the_timelock_then_executes() -> None:
    sim = world()
    supply = total_supply(sim.state)
    alice = sim.balance(ALICE)
    sim.ok((ALICE, txs.PROPOSE, change(("datanet_max_validators", 300), ("market_review_blocks", 50))))  # block 1
    h = header(sim, 1)
    assert (h.status, h.voting_start, h.voting_end, h.total_stake) == (Status.VOTING, 1, 4, 100 * UNIT)
    assert views.holdings(sim.state) == MIN_DEPOSIT and total_supply(sim.state) == supply
    sim.ok((ALICE, txs.VOTE, vote(1, YES)), (BOB, txs.VOTE, vote(1, NO)), (CAROL, txs.VOTE, vote(1, YES)))
    sim.until(4)  # the tally runs at the end of block 4
    h = header(sim, 1)
    assert (h.status, h.yes, h.no, h.voters, h.decided, h.execute_at) == (Status.PASSED, 70 * UNIT, 30 * UNIT, 3, 4, 6)
    assert sim.balance(ALICE) == alice - 2 * 1_000  # the deposit came back; two fees paid
    sim.until(5)
    assert params.get(sim.state, "datanet_max_validators") == 256  # still timelocked
    sim.until(6)
    assert params.get(sim.state, "datanet_max_validators") == 300
    assert params.get(sim.state, "market_review_blocks") == 50
    assert header(sim, 1).status == Status.EXECUTED
    assert [c.to_json() for c in params.history(sim.state, "datanet_max_validators")] == [
        {"height": 6, "old": 256, "new": 300, "proposal": 1}]
    assert params.history(sim.state, "min_fee") == []
    assert total_supply(sim.state) == supply and views.holdings(sim.state) == 0
    assert_replay_matches(sim)


def test_votes_weigh_stake_at_the_block_before_voting_opened() -> None:
    sim = world()
    sim.ok((DAVE, STAKE, Amount(500 * UNIT)))  # block 1: Dave bonds before the proposal exists
    sim.ok((ALICE, txs.PROPOSE, text()), (CAROL, STAKE, Amount(400 * UNIT)))  # block 2: opens; Carol adds
    assert header(sim, 1).total_stake == 600 * UNIT  # the total at the end of block 1
    sim.ok((BOB, UNSTAKE, Amount(30 * UNIT)))  # block 3: Bob's weight stays 30 for this proposal
    sim.ok((DAVE, txs.VOTE, vote(1, NO)), (CAROL, txs.VOTE, vote(1, YES)), (BOB, txs.VOTE, vote(1, YES)))
    h = header(sim, 1)
    assert (h.yes, h.no) == (50 * UNIT, 500 * UNIT)  # Carol 20 (not 420) + Bob 30 yes; Dave 500 no


def test_stake_bonded_after_opening_buys_no_vote() -> None:
    sim = world()
    sim.ok((ALICE, txs.PROPOSE, text()), (DAVE, STAKE, Amount(500 * UNIT)))
    assert_fails_cleanly(sim, DAVE, txs.VOTE, vote(1, YES), "gov_no_voting_power")


def test_a_later_vote_replaces_the_earlier() -> None:
    sim = world()
    sim.ok((ALICE, txs.PROPOSE, text()))
    sim.ok((BOB, txs.VOTE, vote(1, YES)))
    sim.ok((BOB, txs.VOTE, vote(1, VETO)))
    h = header(sim, 1)
    assert (h.yes, h.veto, h.voters) == (0, 30 * UNIT, 1)


def test_deposit_period_opens_the_vote_once_the_minimum_is_met() -> None:
    sim = world()
    sim.ok((ALICE, txs.PROPOSE, text(deposit=MIN_DEPOSIT // 4)))  # block 1: the initial 25 % only
    assert header(sim, 1).status == Status.DEPOSIT
    assert_fails_cleanly(sim, BOB, txs.VOTE, vote(1, YES), "gov_not_in_voting")
    sim.ok((DAVE, txs.DEPOSIT, g.Deposit(1, MIN_DEPOSIT)))  # block 3: over the minimum, voting opens
    h = header(sim, 1)
    assert (h.status, h.deposit, h.voting_start) == (Status.VOTING, MIN_DEPOSIT * 5 // 4, 3)
    assert_fails_cleanly(sim, DAVE, txs.DEPOSIT, g.Deposit(1, 1), "gov_not_in_deposit_period")


def test_a_proposal_below_the_minimum_is_dropped_and_its_deposits_go_to_the_treasury() -> None:
    sim = world()
    supply = total_supply(sim.state)
    sim.ok((ALICE, txs.PROPOSE, text(deposit=MIN_DEPOSIT // 2)))  # block 1, deposit period ends at 5
    sim.ok((DAVE, txs.DEPOSIT, g.Deposit(1, UNIT)))
    sim.until(5)
    h = header(sim, 1)
    assert (h.status, h.decided) == (Status.DROPPED, 5)
    assert views.treasury_doc(sim.state) == {"treasury": MIN_DEPOSIT // 2 + UNIT, "deposits_held": 0}
    assert total_supply(sim.state) == supply


def test_no_quorum_vetoed_and_rejected_each_meet_their_deposit_rule() -> None:
    sim = world()
    deposits = {p: 0 for p in (1, 2, 3)}
    sim.ok((ALICE, txs.PROPOSE, text()), (BOB, txs.PROPOSE, text()), (CAROL, txs.PROPOSE, text()))
    carol = sim.balance(CAROL)
    sim.ok((CAROL, txs.VOTE, vote(1, YES)),  # 20 of 100 voted: below the 33.4 % quorum
           (ALICE, txs.VOTE, vote(2, YES)), (BOB, txs.VOTE, vote(2, VETO)),  # veto 30 / 80 > 33.4 %
           (ALICE, txs.VOTE, vote(3, NO)), (CAROL, txs.VOTE, vote(3, YES)))  # yes 20 / 70: rejected
    sim.until(4)
    assert [header(sim, p).status for p in deposits] == [Status.NO_QUORUM, Status.VETOED, Status.REJECTED]
    assert views.treasury_doc(sim.state)["treasury"] == 2 * MIN_DEPOSIT  # proposals 1 and 2
    assert sim.balance(CAROL) == carol - 2 * 1_000 + MIN_DEPOSIT  # proposal 3's deposit back to Carol
    doc = views.proposal_doc(sim.state, 2, header(sim, 2))
    assert doc["deposit_fate"] == "treasury" and doc["tally"]["veto_bps"] == 3_750


def test_vote_after_the_period_is_refused() -> None:
    sim = world()
    sim.ok((ALICE, txs.PROPOSE, text()))
    sim.until(5)  # tallied at the end of block 4 (no quorum); block 5 clears its deposit-end queue entry
    assert_fails_cleanly(sim, BOB, txs.VOTE, vote(1, YES), "gov_voting_closed")
    assert_fails_cleanly(sim, BOB, txs.VOTE, vote(9, YES), "gov_proposal_not_found")


def test_treasury_spend_pays_and_a_second_spend_that_no_longer_fits_fails_execution() -> None:
    sim = world()
    sim.ok((DAVE, txs.FUND, g.Fund(100 * UNIT)))
    supply = total_supply(sim.state)
    sim.ok((ALICE, txs.PROPOSE, spend(DAVE.address, 70 * UNIT)), (BOB, txs.PROPOSE, spend(CAROL.address, 60 * UNIT)))
    sim.ok(*[(k, txs.VOTE, vote(p, YES)) for k in (ALICE, BOB) for p in (1, 2)])
    dave, carol = sim.balance(DAVE), sim.balance(CAROL)
    sim.until(7)  # both pass at the end of block 5 and execute at the end of block 7, in id order
    h1, h2 = header(sim, 1), header(sim, 2)
    assert (h1.status, h2.status) == (Status.EXECUTED, Status.FAILED_EXECUTION)
    assert h2.error == errors.GOV_TREASURY_INSUFFICIENT.number and h2.execute_at == 7
    assert sim.balance(DAVE) == dave + 70 * UNIT and sim.balance(CAROL) == carol  # Carol's grant never paid
    assert views.treasury_doc(sim.state)["treasury"] == 30 * UNIT
    assert total_supply(sim.state) == supply
    assert_replay_matches(sim)


def test_a_minimum_never_ends_above_its_maximum_even_across_two_proposals() -> None:
    sim = world()
    assert_fails_cleanly(sim, ALICE, txs.PROPOSE, change(("datanet_min_window_blocks", 200_000)), "gov_param_order")
    sim.ok((ALICE, txs.PROPOSE, change(("datanet_max_window_blocks", 50))),  # each fine against the values now
           (BOB, txs.PROPOSE, change(("datanet_min_window_blocks", 60))),
           (CAROL, txs.PROPOSE, change(("market_min_deadline_blocks", 7), ("market_max_deadline_blocks", 8))))
    sim.ok(*[(k, txs.VOTE, vote(p, YES)) for k in (ALICE, BOB) for p in (1, 2, 3)])
    sim.until(7)  # proposed in block 2, all three execute at the end of block 7, in id order
    assert [header(sim, p).status for p in (1, 2, 3)] == [Status.EXECUTED, Status.FAILED_EXECUTION, Status.EXECUTED]
    assert header(sim, 2).error == errors.GOV_PARAM_ORDER.number
    assert [params.get(sim.state, n) for n in ("datanet_min_window_blocks", "datanet_max_window_blocks",
                                                "market_min_deadline_blocks", "market_max_deadline_blocks")] == [
        10, 50, 7, 8]
    assert params.history(sim.state, "datanet_min_window_blocks") == []


def test_genesis_refuses_a_minimum_above_its_maximum() -> None:
    try:
        Sim(list(ALLOC), {"datanet_min_window_blocks": 11, "datanet_max_window_blocks": 10})
    except errors.LedgerError as exc:
        assert exc.code is errors.BAD_PARAM and "datanet_min_window_blocks" in exc.detail
    else:
        raise AssertionError("genesis accepted min > max")


def test_bad_proposals_are_refused_with_their_codes_and_change_nothing() -> None:
    sim = world()
    sim.ok((DAVE, txs.FUND, g.Fund(5 * UNIT)))
    cases = [
        (change(("no_such_param", 1)), "gov_unknown_param"),
        (change(("gov_quorum_bps", 500)), "gov_param_out_of_bounds"),  # below the 10 % floor
        (change(("datanet_max_validators", 10_001)), "gov_param_out_of_bounds"),
        (change(("min_fee", 1), ("min_fee", 2)), "gov_bad_proposal"),
        (change(), "gov_bad_proposal"),
        (g.Propose(g.Kind.TEXT, " ", "", MIN_DEPOSIT), "gov_bad_proposal"),
        (g.Propose(9, "x", "", MIN_DEPOSIT), "gov_bad_proposal"),
        (text(deposit=0), "gov_deposit_too_low"),
        (text(deposit=MIN_DEPOSIT // 4 - 1), "gov_deposit_too_low"),
        (spend(DAVE.address, 5 * UNIT + 1), "gov_treasury_insufficient"),
        (spend(bytes(20), 1), "gov_bad_proposal"),
        (text(deposit=2_000 * UNIT), "insufficient_balance"),
    ]
    for payload, code in cases:
        assert_fails_cleanly(sim, ALICE, txs.PROPOSE, payload, code)
    assert_fails_cleanly(sim, ALICE, txs.VOTE, vote(1, 7), "gov_bad_option")
    assert_fails_cleanly(sim, ALICE, txs.DEPOSIT, g.Deposit(1, 0), "zero_amount")
    assert_fails_cleanly(sim, ALICE, txs.FUND, g.Fund(0), "zero_amount")


def test_parse_value_takes_plain_digits_only() -> None:
    assert g.parse_value("x", "2_500") == 2_500 and g.parse_change(" min_fee = 10") == g.ParamChange("min_fee", 10)
    for bad in ("1.5", "1e3", "true", "-1", "", "0x10", "²", str(2**64)):
        try:
            g.parse_value("x", bad)
        except errors.LedgerError as exc:
            assert exc.code is errors.GOV_PARAM_TYPE
        else:
            raise AssertionError(bad)
    try:
        g.parse_change("min_fee")
    except errors.LedgerError as exc:
        assert exc.code is errors.GOV_BAD_PROPOSAL
    else:
        raise AssertionError("no =")
