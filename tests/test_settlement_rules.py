"""Settlement's rules on a real chain: exact worked examples, a record rejected later, vesting, withdraw, replay.

The world (tests/test_settlement_world.py): Datanet `facts` split 5,000 / 2,000 / 2,000 / 1,000 bp (data,
model owner, compute, validators); C1 owns rh(1), rh(2), C2 rh(3), C3 rh(4), all accepted; C4's rh(5) rejected;
validators VAL1 (3 units bonded) and VAL2 (1 unit); adapter legal@1 at 1 unit per 1k tokens owned by BUILDER;
the base smollm2 at 1,000 per 1k; CALLER's key for PROVIDER.
"""

from __future__ import annotations

import pytest

from ailedger.billing import payloads as b
from ailedger.core import errors
from ailedger.settlement import state as st
from ailedger.settlement import views
from ailedger.settlement.txs import WITHDRAW, Withdraw
from tests.datanet_sim import rh
from tests.test_settlement_world import (
    BUILDER,
    C1,
    C2,
    C3,
    C4,
    CURATOR,
    PROVIDER,
    RETRACT,
    UNIT,
    VAL1,
    VAL2,
    World,
    earnings,
    prepaid,
    receipt,
    replay,
    retraction,
    rid,
    settle,
    supply,
    world,
)


@pytest.fixture(scope="module")
def template() -> World:
    return world()


def balances(w: World) -> dict[str, int]:
    names = {"C1": C1, "C2": C2, "C3": C3, "C4": C4, "BUILDER": BUILDER, "PROVIDER": PROVIDER, "VAL1": VAL1,
             "VAL2": VAL2}
    return {n: earnings(w, k).balance for n, k in names.items() if earnings(w, k).balance}


def test_worked_example_every_rule_once(template: World) -> None:
    """docs/settlement.md, "Worked example": each number below is derived there by hand."""
    w = template.copy()
    before, s0 = prepaid(w), supply(w.state)
    settle(w, receipt(1, 1_000, [(rh(1), 6_000), (rh(3), 4_000)]),  # fee 1,000,000, attributed
           receipt(2, 7, []),  # fee 7,000, unattributed: its data part (3,500) goes back to the caller
           receipt(3, 3, version=0),  # base-only, fee 3: all to the provider
           receipt(4, 1_001, [(rh(1), 5_000), (rh(5), 5_000)]))  # rh(5) was rejected: rh(1) takes the data part
    assert balances(w) == {"C1": 800_500, "C2": 200_000, "BUILDER": 401_600, "PROVIDER": 401_603,
                           "VAL1": 150_600, "VAL2": 50_200}
    assert prepaid(w) == before - 2_008_003 + 3_500
    c = views.conservation(w.state)
    assert c["conserved"] and (c["settled"], c["earned"], c["refunded"], c["pooled"]) == (2_008_003, 2_004_503,
                                                                                          3_500, 0)
    assert supply(w.state) == s0
    from ailedger.billing import views as bv

    assert bv.escrowed(w.state) == 0 and bv.unsettled_count(w.state) == 0
    line = st.get_line(w.state, C1.address, w.height)
    assert line is not None and [(x.role, x.amount, x.count) for x in line.entries] == [(st.Role.DATA, 800_500, 2)]
    summary = st.get_summary(w.state, w.height)
    assert summary is not None and (summary.first_seq, summary.end_seq, summary.receipts) == (0, 4, 4)
    assert st.ineligible_records(w.state, w.height) == {("facts", rh(5))}
    # the receipts behind C1's line, recomputed, add up to the line
    behind = views.line_receipts(w.state, C1.address, w.height, 10)
    assert [r["id"] for r in behind] == [rid(1).hex(), rid(4).hex()]
    assert sum(p["amount"] for r in behind for p in r["parts"]) == 800_500
    replay(w)


def test_largest_remainder_at_both_levels(template: World) -> None:
    """fee 1,001 (1 token at 1,000,000 per 1k rounds up to 1,000... plus): the split and the shares both round."""
    w = template.copy()
    # 1 token: fee ceil(1 * 1,000,000 / 1,000) = 1,000 -> 500 / 200 / 200 / 100; data 500 over 3 records
    # 3,334 / 3,333 / 3,333 bp: floors 166, 166, 166 (498), remainders 7,000, 6,500, 6,500 (of 10,000):
    # the 2 left go to rh(1) (largest) and rh(3) (tie with rh(4), smaller hash first)
    settle(w, receipt(1, 1, [(rh(1), 3_334), (rh(3), 3_333), (rh(4), 3_333)]))
    assert (earnings(w, C1).balance, earnings(w, C2).balance, earnings(w, C3).balance) == (167, 167, 166)
    # validators 100 by stake 3:1 -> 75 / 25
    assert (earnings(w, VAL1).balance, earnings(w, VAL2).balance) == (75, 25)


def test_a_record_rejected_later_stops_earning_from_that_block_on(template: World) -> None:
    w = template.copy()
    settle(w, receipt(1, 1_000, [(rh(1), 5_000), (rh(3), 5_000)]))
    first = w.height
    assert (earnings(w, C1).balance, earnings(w, C2).balance) == (250_000, 250_000)
    # the retraction and a receipt naming the record in the same block: the block settles with the record rejected
    w.ok((CURATOR, RETRACT, retraction("facts", rh(1))),
         (PROVIDER, b.SUBMIT_RECEIPTS, b.SubmitReceipts([receipt(2, 1_000, [(rh(1), 5_000), (rh(3), 5_000)])])))
    assert (earnings(w, C1).balance, earnings(w, C2).balance) == (250_000, 750_000)
    settle(w, receipt(3, 1_000, [(rh(1), 10_000)]))  # only rejected records: the data part is refunded
    assert earnings(w, C1).balance == 250_000
    # what block `first` paid C1 is still recomputed exactly, whatever happened to the record since
    behind = views.line_receipts(w.state, C1.address, first, 10)
    assert [(r["id"], [p["amount"] for p in r["parts"]]) for r in behind] == [(rid(1).hex(), [250_000])]
    assert views.conservation(w.state)["conserved"]
    replay(w)


def test_vesting_released_or_forfeited_by_reputation_at_the_release_height() -> None:
    from ailedger.datanet import payloads as d
    from tests.datanet_sim import contribute, votes

    # threshold 7,000: C1 (two accepted records, Beta(3,1) = 7,500) passes; C2 and C3 (6,666) are held 6 blocks
    w = world(params={"settlement_vesting_threshold_bps": 7_000, "settlement_vesting_blocks": 6})
    s0 = supply(w.state)
    settle(w, receipt(1, 1_000, [(rh(1), 5_000), (rh(3), 2_500), (rh(4), 2_500)]))
    held_at = w.height
    assert (earnings(w, C1).balance, earnings(w, C1).held) == (250_000, 0)
    assert (earnings(w, C2).balance, earnings(w, C2).held) == (0, 125_000)
    assert (earnings(w, C3).balance, earnings(w, C3).held) == (0, 125_000)
    assert views.vesting(w.state, C2.address) == [{"datanet": "facts", "amount": 125_000,
                                                   "release_height": held_at + 6}]
    # C2 gets a second record accepted before the release: 7,500 again
    w.ok((C2, d.CONTRIBUTE, contribute("facts", [rh(7)])))
    w.ok((VAL1, d.VOTE, votes("facts", (rh(7), 1))))
    w.until(held_at + 5)
    assert earnings(w, C2).held == 125_000
    val1, val2 = earnings(w, VAL1).balance, earnings(w, VAL2).balance
    w.until(held_at + 6)
    assert (earnings(w, C2).balance, earnings(w, C2).held) == (125_000, 0)  # released
    e3 = earnings(w, C3)
    assert (e3.balance, e3.held, e3.forfeited) == (0, 0, 125_000)  # forfeited to the validators, 3:1 by stake
    assert (earnings(w, VAL1).balance - val1, earnings(w, VAL2).balance - val2) == (93_750, 31_250)
    assert views.vesting(w.state, C2.address) == []
    line = st.get_line(w.state, C3.address, held_at + 6)
    assert line is not None and [(x.role, x.forfeited) for x in line.entries] == [(st.Role.FORFEITED, 125_000)]
    assert supply(w.state) == s0 and views.conservation(w.state)["conserved"]
    replay(w)


def test_withdraw_moves_earnings_to_the_balance(template: World) -> None:
    w = template.copy()
    settle(w, receipt(1, 1_000, [(rh(3), 10_000)]))
    assert earnings(w, C2).balance == 500_000
    bal = w.balance(C2)
    w.ok((C2, WITHDRAW, Withdraw(200_000)))
    assert earnings(w, C2).balance == 300_000 and earnings(w, C2).withdrawn == 200_000
    assert w.balance(C2) == bal + 200_000 - 1_000
    (r,) = w.block((C2, WITHDRAW, Withdraw(300_001)))
    assert r.code == errors.INSUFFICIENT_EARNINGS.number
    (r,) = w.block((C2, WITHDRAW, Withdraw(0)))
    assert r.code == errors.ZERO_AMOUNT.number
    (r,) = w.block((C4, WITHDRAW, Withdraw(1)))
    assert r.code == errors.INSUFFICIENT_EARNINGS.number
    assert views.conservation(w.state)["conserved"]
    replay(w)


def test_no_validator_with_stake_sends_the_validators_part_to_the_pool() -> None:
    from ailedger.chain import accounts
    from ailedger.datanet import state as dn

    w = world()
    w.ok((VAL1, accounts.UNSTAKE, accounts.Amount(3 * UNIT)), (VAL2, accounts.UNSTAKE, accounts.Amount(UNIT)))
    pool = dn.get_amount(w.state, dn.pool_key("facts"))
    settle(w, receipt(1, 1_000, [(rh(3), 10_000)]))
    assert dn.get_amount(w.state, dn.pool_key("facts")) == pool + 100_000
    assert views.conservation(w.state)["pooled"] == 100_000
