"""Property tests: value is conserved through random proposal / deposit / vote / fund / stake sequences,
the running tally equals the last vote of each voter weighted by stake at the opening, and the tally rule's
own properties (what passes meets every bar; more yes never un-passes; scale does not matter)."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from ailedger.chain import accounts
from ailedger.chain.accounts import STAKE, UNSTAKE, Amount
from ailedger.governance import payloads as g
from ailedger.governance import txs, views
from ailedger.governance.state import Status, find_header, get_body, get_vote, proposal_count
from ailedger.governance.tally import BPS, Rules, outcome
from tests.governance_sim import ALICE, BOB, CAROL, DAVE, MIN_DEPOSIT, UNIT, change, spend, text, world
from tests.models_sim import assert_replay_matches, total_supply

KEYS = [ALICE, BOB, CAROL, DAVE]

vote_action = st.tuples(st.just("vote"), st.integers(0, 3), st.integers(1, 3), st.sampled_from([1, 1, 2, 3, 4]))
action = st.one_of(
    st.tuples(st.just("propose"), st.integers(0, 3), st.integers(0, 2), st.sampled_from([1, 4, 4])),
    st.tuples(st.just("deposit"), st.integers(0, 3), st.integers(1, 3), st.integers(1, 12)),
    vote_action, vote_action, vote_action,
    st.tuples(st.just("fund"), st.integers(0, 3), st.integers(0, 0), st.integers(1, 30)),
    st.tuples(st.just("stake"), st.integers(0, 3), st.booleans(), st.integers(1, 40)),
)


def to_tx(a: tuple[Any, ...]) -> tuple[Any, int, Any]:
    kind, who, x, y = a
    key = KEYS[who]
    if kind == "propose":
        deposit = MIN_DEPOSIT * y // 4
        payload = [text(deposit), change(("market_review_blocks", 10 + who), deposit=deposit),
                   spend(KEYS[(who + 1) % 4].address, 5 * UNIT, deposit)][x]
        return key, txs.PROPOSE, payload
    if kind == "deposit":
        return key, txs.DEPOSIT, g.Deposit(x, y * UNIT)
    if kind == "vote":
        return key, txs.VOTE, g.Vote(x, y)
    if kind == "fund":
        return key, txs.FUND, g.Fund(y * UNIT)
    return key, STAKE if x else UNSTAKE, Amount(y * UNIT)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(action, max_size=6), min_size=1, max_size=14))
def test_deposits_and_treasury_conserve_value(blocks: list[list[tuple[Any, ...]]]) -> None:
    sim = world()
    supply = total_supply(sim.state)
    funded = 0
    votes: dict[tuple[int, bytes], int] = {}
    for items in blocks:
        receipts = sim.block(*[to_tx(a) for a in items])
        for a, r in zip(items, receipts, strict=True):
            if r.code == 0 and a[0] == "fund":
                funded += a[3] * UNIT
            if r.code == 0 and a[0] == "vote":
                votes[(a[2], KEYS[a[1]].address)] = a[3]
        assert total_supply(sim.state) == supply
        check_books(sim, funded, votes)
    sim.until(sim.height + 12)  # every proposal reaches its end
    assert total_supply(sim.state) == supply
    check_books(sim, funded, votes)
    assert views.treasury_doc(sim.state)["deposits_held"] == 0
    for pid in range(1, proposal_count(sim.state) + 1):
        h = find_header(sim.state, pid)
        event(f"status {h.status if h else None}")
    assert_replay_matches(sim)


def check_books(sim: Any, funded: int, votes: dict[tuple[int, bytes], int]) -> None:
    """treasury = funded + deposits sent to it - spends executed; held = deposits of open proposals;
    each tally = the last vote of each voter, weighted by their stake at the block before opening."""
    to_treasury = spent = held = 0
    for pid in range(1, proposal_count(sim.state) + 1):
        h = find_header(sim.state, pid)
        assert h is not None
        if h.status in (Status.DEPOSIT, Status.VOTING):
            held += h.deposit
        elif h.status in (Status.DROPPED, Status.NO_QUORUM, Status.VETOED):
            to_treasury += h.deposit
        if h.status == Status.EXECUTED and h.kind == g.Kind.TREASURY_SPEND:
            spent += get_body(sim.state, pid).amount
        if h.voting_start:
            tally = {o: 0 for o in g.OPTION_NAMES}
            for (p, voter), option in votes.items():
                if p == pid:
                    weight = accounts.stake_at(sim.state, voter, h.voting_start - 1)
                    assert get_vote(sim.state, pid, voter) == (option, weight)
                    tally[option] += weight
            assert (h.yes, h.no, h.abstain, h.veto) == tuple(tally[o] for o in sorted(tally))
    assert views.treasury_doc(sim.state) == {"treasury": funded + to_treasury - spent, "deposits_held": held}


amounts = st.integers(0, 10**12)
bps = st.integers(0, BPS)


@given(amounts, amounts, amounts, amounts, amounts, st.integers(1_000, BPS), st.integers(5_000, 9_999),
       st.integers(1_000, 5_000))
def test_tally_rule(total: int, yes: int, no: int, abstain: int, veto: int, q: int, t: int, v: int) -> None:
    rules = Rules(q, t, v)
    total = max(total, yes + no + abstain + veto)  # votes never exceed the stake they were drawn from
    result = outcome(total, yes, no, abstain, veto, rules)
    voted = yes + no + abstain + veto
    if result == Status.PASSED:
        assert voted * BPS >= q * total and veto * BPS <= v * voted and yes * BPS > t * (yes + no)
        assert outcome(total, yes + no, 0, abstain, veto, rules) == Status.PASSED  # more yes never un-passes
    if result == Status.NO_QUORUM:
        assert total == 0 or voted * BPS < q * total
    assert outcome(total * 3, yes * 3, no * 3, abstain * 3, veto * 3, rules) == result
    assert result in (Status.PASSED, Status.REJECTED, Status.NO_QUORUM, Status.VETOED)
