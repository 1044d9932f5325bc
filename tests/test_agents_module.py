"""The agents module through the real state machine: registry, tasks, sampled verification, pay by
verified reliability, slashing, suspension and reinstatement, timeouts, routing, and every refusal."""

from __future__ import annotations

from ailedger.agents import payloads as ag
from ailedger.agents import reliability
from ailedger.agents.state import TASK_COUNT_KEY, AgentStatus, Draw, TaskStatus, get_u64
from ailedger.agents.views import holdings
from ailedger.chain.accounts import STAKE, UNSTAKE, Amount
from ailedger.models import payloads as m
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role
from tests.agents_sim import (
    CONSUMER,
    OPERATOR,
    RESULT,
    RIVAL,
    STRANGER,
    UNIT,
    VERIFIER,
    agent,
    spec,
    task,
    the_task,
    until_sampled,
    world,
)
from tests.datanet_sim import Sim
from tests.models_sim import (
    adapter,
    assert_fails_cleanly,
    assert_replay_matches,
    datanet_with_versions,
    h,
    total_supply,
)


def posted(sim: Sim, fee: int = 200_000, name: str = "calc") -> int:
    """Post a task from the consumer; its id."""
    sim.ok((CONSUMER, ag.POST_TASK, task(name, fee)))
    return newest(sim)


def newest(sim: Sim) -> int:
    return get_u64(sim.state, TASK_COUNT_KEY)


def registered(**params: int) -> Sim:
    sim = world(**params)
    sim.ok((OPERATOR, ag.REGISTER, spec()))
    return sim


def test_register_post_and_pay_unverified_after_the_window() -> None:
    sim = registered()
    supply = total_supply(sim.state)
    tid = posted(sim)
    t = the_task(sim, tid)
    assert t.status == TaskStatus.OPEN and t.fee == 200_000 and holdings(sim.state) == 200_000
    assert total_supply(sim.state) == supply  # fees go to the proposer's balance; the task fee is in escrow
    until_sampled(sim, OPERATOR, tid, want=False)
    t = the_task(sim, tid)
    assert t.status == TaskStatus.SUBMITTED and t.sample_rate_bps == 6_000  # score 5,000: min + 8,000 / 2
    # drawn at the end of the next block, with its seed: the hash of the block that holds the result
    assert t.draw_height == t.result_height + 1 and t.sampled == Draw.SKIP
    result_block = sim.blocks[t.result_height - 1].header
    assert result_block.height == t.result_height
    assert not reliability.drawn(result_block.hash, tid, 6_000)
    assert t.verify_deadline == t.draw_height + 3
    op_before = sim.balance(OPERATOR)
    sim.until(t.verify_deadline)
    t = the_task(sim, tid)
    # unverified: paid at the score 5,000 -> 5,000 / 8,000 of the fee; the consumer gets the rest back
    assert t.status == TaskStatus.PAID and t.paid == 200_000 * 6_250 // 10_000 and t.refunded == 200_000 - t.paid
    assert sim.balance(OPERATOR) == op_before + t.paid and holdings(sim.state) == 0
    assert agent(sim).alpha == agent(sim).beta  # unverified work adds no evidence
    assert_replay_matches(sim)


def test_verified_pass_pays_at_the_verdict_and_raises_the_score() -> None:
    sim = registered()
    tid = posted(sim)
    until_sampled(sim, OPERATOR, tid, want=True)
    t = the_task(sim, tid)
    assert reliability.drawn(sim.blocks[t.result_height - 1].header.hash, tid, t.sample_rate_bps)
    sim.ok((VERIFIER, ag.VERDICT, ag.Verdict(tid, 1)))
    t, a = the_task(sim, tid), agent(sim)
    assert t.status == TaskStatus.PAID and t.verdict == 1 and a.verified_good == 1
    assert t.reward == 0  # the pool is empty until someone is slashed
    # after the pass Beta(2, 1): score 6,666 -> pay 6,666 * 10,000 // 8,000 = 8,332 bps
    assert t.paid == 200_000 * 8_332 // 10_000 and t.paid + t.refunded == t.fee
    assert reputation.score_bps(sim.state, OPERATOR.address, Role.AGENT, sim.height) == 6_666


def test_failed_verification_refunds_slashes_and_suspends_below_the_floor() -> None:
    sim = registered()
    supply = total_supply(sim.state)
    stake = sim.stake(OPERATOR)
    fails = 0
    while agent(sim).status == AgentStatus.ACTIVE:
        tid = posted(sim)
        until_sampled(sim, OPERATOR, tid, want=True)
        before = sim.balance(CONSUMER)
        sim.ok((VERIFIER, ag.VERDICT, ag.Verdict(tid, 0)))
        fails += 1
        t = the_task(sim, tid)
        assert t.status == TaskStatus.FAILED and t.refunded == t.fee and t.paid == 0
        assert sim.balance(CONSUMER) == before + t.fee and t.slashed == 2_000 * UNIT // 10_000
    a = agent(sim)
    assert fails == 2 and a.status == AgentStatus.SUSPENDED  # Beta(1, 3): 2,500 < 3,000
    # the pool keeps the slashes less the verifier's reward (20,000 a verdict, paid from the pool)
    assert sim.stake(OPERATOR) == stake - 2 * 200_000 and holdings(sim.state) == 400_000 - 2 * 20_000
    assert the_task(sim, tid).reward == 20_000
    assert total_supply(sim.state) == supply  # the slashed stake is in the pool
    assert_fails_cleanly(sim, CONSUMER, ag.POST_TASK, task(), "agent_suspended")
    assert_fails_cleanly(sim, OPERATOR, ag.REINSTATE, ag.Named("calc"), "agent_not_reinstatable")  # too early
    sim.until(a.suspended_until)
    assert_fails_cleanly(sim, STRANGER, ag.REINSTATE, ag.Named("calc"), "agent_not_operator")
    sim.ok((OPERATOR, ag.REINSTATE, ag.Named("calc")))
    assert agent(sim).status == AgentStatus.ACTIVE and agent(sim).beta == a.beta  # on probation
    assert_replay_matches(sim)


def test_no_result_in_time_refunds_and_lowers_the_score() -> None:
    sim = registered()
    tid = posted(sim)
    deadline = the_task(sim, tid).result_deadline
    sim.until(deadline)
    t = the_task(sim, tid)
    assert t.status == TaskStatus.EXPIRED and t.refunded == t.fee and agent(sim).expired == 1
    assert agent(sim).beta > agent(sim).alpha
    assert_fails_cleanly(sim, OPERATOR, ag.SUBMIT_RESULT, ag.SubmitResult(tid, RESULT), "task_result_late")


def test_routing_follows_verified_score_then_price_not_volume() -> None:
    sim = registered()
    sim.ok((RIVAL, ag.REGISTER, spec("cheap", price=50_000)))
    assert_fails_cleanly(sim, CONSUMER, ag.POST_TASK, task("", 10_000), "task_no_route")
    sim.ok((CONSUMER, ag.POST_TASK, task("", 200_000)))
    assert the_task(sim, 1).agent == "cheap"  # equal scores: the lower price
    # calc earns one verified pass; cheap does many unverified tasks (volume) and stays at the prior
    tid = posted(sim)
    until_sampled(sim, OPERATOR, tid, want=True)
    sim.ok((VERIFIER, ag.VERDICT, ag.Verdict(tid, 1)))
    for _ in range(3):
        sim.ok((CONSUMER, ag.POST_TASK, task("cheap", 200_000)))
    sim.ok((CONSUMER, ag.POST_TASK, task("", 200_000)))
    assert the_task(sim, newest(sim)).agent == "calc"
    # a fee below calc's price routes to the only agent it can afford
    sim.ok((CONSUMER, ag.POST_TASK, task("", 60_000)))
    assert the_task(sim, newest(sim)).agent == "cheap"


def test_pay_rule_is_a_function_of_score_only() -> None:
    assert reliability.pay_bps(5_000, 8_000) == 6_250
    assert reliability.pay_bps(8_000, 8_000) == reliability.pay_bps(9_999, 8_000) == 10_000
    assert reliability.sample_rate_bps(10_000, 2_000, 10_000) == 2_000
    assert reliability.sample_rate_bps(0, 2_000, 10_000) == 10_000


def test_refusals_leave_state_unchanged() -> None:
    sim = registered()
    fail = assert_fails_cleanly
    fail(sim, RIVAL, ag.REGISTER, spec(), "agent_exists")
    fail(sim, RIVAL, ag.REGISTER, spec("x", tools=("shell",)), "agent_unknown_tool")
    fail(sim, RIVAL, ag.REGISTER, spec("x", model="nope@1"), "agent_model_unavailable")
    fail(sim, RIVAL, ag.REGISTER, spec("x", model="nope"), "agent_model_unavailable")
    fail(sim, RIVAL, ag.REGISTER, spec("X Y"), "agent_invalid")
    fail(sim, STRANGER, ag.REGISTER, spec("x"), "agent_stake_too_low")  # no stake bonded
    fail(sim, STRANGER, ag.UPDATE, spec(price=1), "agent_not_operator")
    fail(sim, STRANGER, ag.RETIRE, ag.Named("calc"), "agent_not_operator")
    fail(sim, CONSUMER, ag.POST_TASK, task(checker="astrology"), "task_unknown_checker")
    fail(sim, CONSUMER, ag.POST_TASK, task(fee=99_999), "task_fee_below_price")
    fail(sim, CONSUMER, ag.POST_TASK, task(fee=500 * UNIT), "task_fee_unfunded")
    fail(sim, CONSUMER, ag.POST_TASK, task(checker=""), "task_bad_spec")
    fail(sim, CONSUMER, ag.POST_TASK, task(result_blocks=0), "task_bad_spec")
    fail(sim, CONSUMER, ag.POST_TASK, task("nobody"), "agent_not_found")
    fail(sim, OPERATOR, ag.POST_TASK, task(), "task_own_agent")
    fail(sim, STRANGER, ag.REGISTER_VERIFIER, ag.RegisterVerifier(), "verifier_stake_too_low")
    fail(sim, VERIFIER, ag.REGISTER_VERIFIER, ag.RegisterVerifier(), "verifier_exists")
    tid = posted(sim)
    fail(sim, STRANGER, ag.SUBMIT_RESULT, ag.SubmitResult(tid, RESULT), "task_not_yours")
    fail(sim, OPERATOR, ag.SUBMIT_RESULT, ag.SubmitResult(99, RESULT), "task_not_found")
    fail(sim, VERIFIER, ag.VERDICT, ag.Verdict(tid, 0), "task_not_sampled")  # no result yet
    until_sampled(sim, OPERATOR, tid, want=True)
    fail(sim, OPERATOR, ag.SUBMIT_RESULT, ag.SubmitResult(tid, RESULT), "task_not_open")
    fail(sim, STRANGER, ag.VERDICT, ag.Verdict(tid, 0), "verifier_not_registered")
    sim.ok((RIVAL, ag.REGISTER_VERIFIER, ag.RegisterVerifier()))
    sim.ok((RIVAL, STAKE, Amount(1)))
    fail(sim, VERIFIER, ag.VERDICT, ag.Verdict(tid, 2), "task_bad_spec")
    sim.until(the_task(sim, tid).verify_deadline)
    assert the_task(sim, tid).status == TaskStatus.PAID
    fail(sim, VERIFIER, ag.VERDICT, ag.Verdict(tid, 0), "task_verify_closed")
    sim.ok((OPERATOR, ag.RETIRE, ag.Named("calc")))
    fail(sim, CONSUMER, ag.POST_TASK, task(), "agent_retired")
    fail(sim, OPERATOR, ag.RETIRE, ag.Named("calc"), "agent_retired")


def test_a_verifier_may_not_judge_its_own_task() -> None:
    sim = registered()
    sim.ok((OPERATOR, ag.REGISTER_VERIFIER, ag.RegisterVerifier()))
    tid = posted(sim)
    until_sampled(sim, OPERATOR, tid, want=True)
    assert_fails_cleanly(sim, OPERATOR, ag.VERDICT, ag.Verdict(tid, 1), "verifier_conflict")


def test_stake_must_cover_every_active_agent() -> None:
    sim = registered()  # the operator bonds 3 units: three agents at most
    sim.ok((OPERATOR, ag.REGISTER, spec("b")))
    sim.ok((OPERATOR, ag.REGISTER, spec("c")))
    assert_fails_cleanly(sim, OPERATOR, ag.REGISTER, spec("d"), "agent_stake_too_low")
    sim.ok((OPERATOR, ag.RETIRE, ag.Named("c")))
    sim.ok((OPERATOR, ag.REGISTER, spec("d")))


def test_agents_on_adapters_update_and_routing_past_an_understaked_operator() -> None:
    sim = registered(datanet_min_window_blocks=1)
    datanet_with_versions(sim, STRANGER, VERIFIER, CONSUMER)
    sim.ok((RIVAL, m.PUBLISH_ADAPTER, adapter("legal", h(7))))
    sim.ok((RIVAL, ag.REGISTER, spec("lawyer", model="legal@1", price=10_000)))
    for model in ("legal@2", "legal@01", "legal@x", "legal@"):
        assert_fails_cleanly(sim, RIVAL, ag.REGISTER, spec("x", model=model), "agent_model_unavailable")
    sim.ok((RIVAL, m.RETIRE, m.Retire("legal", 1)))
    assert_fails_cleanly(sim, RIVAL, ag.UPDATE, spec("lawyer", model="legal@1"), "agent_model_unavailable")
    sim.ok((RIVAL, ag.UPDATE, spec("lawyer", price=20_000, task_types=("arithmetic", "law"))))
    a = agent(sim, "lawyer")
    assert (a.model, a.price, a.task_types, a.status) == ("smollm2", 20_000, ["arithmetic", "law"], AgentStatus.ACTIVE)
    # the cheaper lawyer wins the route until its operator unbonds below agents_min_stake
    sim.ok((CONSUMER, ag.POST_TASK, task("", 200_000)))
    assert the_task(sim, newest(sim)).agent == "lawyer"
    sim.ok((RIVAL, UNSTAKE, Amount(2_500_000)))
    sim.ok((CONSUMER, ag.POST_TASK, task("", 200_000)))
    assert the_task(sim, newest(sim)).agent == "calc"
    assert_fails_cleanly(sim, CONSUMER, ag.POST_TASK, task("lawyer", 200_000), "agent_stake_too_low")
