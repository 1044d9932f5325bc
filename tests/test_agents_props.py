"""Property tests: escrow and stake conserve value through random task / result / verdict / slash / stake
sequences, every closed task accounts for its whole fee, and replay reproduces the state."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from ailedger.agents import payloads as ag
from ailedger.agents.state import (
    ESCROW_KEY,
    HELD,
    POOL_KEY,
    TASK_COUNT_KEY,
    TASK_STATUS_NAMES,
    TaskStatus,
    find_task,
    get_u64,
)
from ailedger.chain import accounts
from ailedger.chain.accounts import PREFIX as ACCT_PREFIX
from ailedger.chain.accounts import STAKE, UNSTAKE, Amount, decode_account
from tests.agents_sim import CONSUMER, OPERATOR, RESULT, RIVAL, STRANGER, VERIFIER, spec, task, world
from tests.datanet_sim import Sim
from tests.models_sim import assert_replay_matches, total_supply

OPERATORS = [OPERATOR, RIVAL]
CONSUMERS = [CONSUMER, STRANGER]
AGENTS = ["calc", "cheap", ""]

post = st.tuples(st.just("post"), st.integers(0, 1), st.integers(0, 2), st.integers(40_000, 400_000))
action = st.one_of(
    post, post,
    st.tuples(st.just("result"), st.sampled_from([0, 0, 0, 1]), st.integers(0, 20), st.just(0)),
    st.tuples(st.just("result"), st.sampled_from([0, 0, 0, 1]), st.integers(0, 20), st.just(0)),
    st.tuples(st.just("verdict"), st.sampled_from([0, 0, 0, 1]), st.integers(0, 20), st.integers(0, 1)),
    st.tuples(st.just("verdict"), st.sampled_from([0, 0, 0, 1]), st.integers(0, 20), st.integers(0, 1)),
    st.tuples(st.just("stake"), st.integers(0, 1), st.booleans(), st.integers(1, 2_000_000)),
    st.tuples(st.just("reinstate"), st.integers(0, 1), st.integers(0, 1), st.just(0)),
)


def to_tx(sim: Sim, a: tuple[Any, ...]) -> tuple[Any, int, Any]:
    """`result` and `verdict` pick a task by index among those posted so far; `who` 0 is the rightful
    sender (the task's operator, the registered verifier), 1 a stranger."""
    kind, who, x, y = a
    if kind == "post":
        return CONSUMERS[who], ag.POST_TASK, task(AGENTS[x], y, result_blocks=3)
    tid = 1 + x % max(1, get_u64(sim.state, TASK_COUNT_KEY))
    if kind == "result":
        t = find_task(sim.state, tid)
        rightful = OPERATOR if t is None or t.operator == OPERATOR.address else RIVAL
        return [rightful, STRANGER][who], ag.SUBMIT_RESULT, ag.SubmitResult(tid, RESULT)
    if kind == "verdict":
        return [VERIFIER, STRANGER][who], ag.VERDICT, ag.Verdict(tid, y)
    if kind == "stake":
        return OPERATORS[who], (UNSTAKE if x else STAKE), Amount(y)
    return OPERATORS[who], ag.REINSTATE, ag.Named(["calc", "cheap"][x])


def check(sim: Sim, supply: int) -> None:
    assert total_supply(sim.state) == supply
    stakes = [decode_account(v).stake for k, v in sim.state.items() if k.startswith(ACCT_PREFIX)]
    assert accounts.total_stake(sim.state) == sum(stakes)  # slashes keep the bonded total right
    held = 0
    for tid in range(1, get_u64(sim.state, TASK_COUNT_KEY) + 1):
        t = find_task(sim.state, tid)
        assert t is not None
        if t.status in HELD:
            held += t.fee
            assert t.paid == t.refunded == 0
        else:
            assert t.paid + t.refunded == t.fee  # every closed task accounts for its whole fee
            assert t.slashed == 0 or t.status == TaskStatus.FAILED
    assert get_u64(sim.state, ESCROW_KEY) == held
    closed = [t for tid in range(1, get_u64(sim.state, TASK_COUNT_KEY) + 1) if (t := find_task(sim.state, tid))]
    assert get_u64(sim.state, POOL_KEY) == sum(t.slashed for t in closed) - sum(t.reward for t in closed)
    assert all(t.reward <= 20_000 and (t.reward == 0 or t.verdict) for t in closed)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(action, min_size=1, max_size=5), min_size=4, max_size=14))
def test_escrow_and_stake_conserve_value(blocks: list[list[tuple[Any, ...]]]) -> None:
    sim = world(agents_verify_window_blocks=2, agents_suspension_blocks=2)
    sim.ok((OPERATOR, ag.REGISTER, spec()), (RIVAL, ag.REGISTER, spec("cheap", price=50_000)))
    supply = total_supply(sim.state)
    for items in blocks:
        sim.block(*[to_tx(sim, a) for a in items])
        check(sim, supply)
    sim.until(sim.height + 6)  # every window closes
    check(sim, supply)
    assert get_u64(sim.state, ESCROW_KEY) == 0
    for tid in range(1, get_u64(sim.state, TASK_COUNT_KEY) + 1):
        t = find_task(sim.state, tid)
        assert t is not None
        event(f"task {TASK_STATUS_NAMES[t.status]}" + (" (verified)" if t.verdict else ""))
    assert_replay_matches(sim)
