"""How a task ends: paid (after a passing verdict, or unverified when its window closes), failed (refund,
slash, reputation down, maybe suspension) or expired (no result in time: refund, reputation down).

Every movement of money goes through `release` (escrow -> an account) or `slash` (bonded stake -> the
pool), so escrow never goes negative (`agents_escrow_short` otherwise) and value is conserved: what a
task held is exactly what its consumer and operator get back.
"""

from __future__ import annotations

from ailedger.agents import reliability
from ailedger.agents.state import (
    ESCROW_KEY,
    POOL_KEY,
    Agent,
    AgentStatus,
    Draw,
    Task,
    TaskStatus,
    due,
    find_task,
    get_agent,
    get_u32,
    get_u64,
    operator_key,
    put_agent,
    put_task,
    put_u32,
    put_u64,
)
from ailedger.chain import accounts, params
from ailedger.chain.state import Journal
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet import rules as datanet_rules
from ailedger.reputation import module as reputation
from ailedger.reputation.beta import SCALE
from ailedger.reputation.module import Role

BPS = reliability.BPS


def half_life(state: Journal) -> int:
    return params.get(state, "reputation_half_life_blocks")


def hold(state: Journal, payer: bytes, amount: int) -> None:
    """Move `amount` from the payer's balance into the agents escrow."""
    accounts.debit(state, payer, amount)
    put_u64(state, ESCROW_KEY, get_u64(state, ESCROW_KEY) + amount)


def release(state: Journal, to: bytes, amount: int) -> None:
    """Move `amount` out of the escrow to an account's balance."""
    if amount == 0:
        return
    held = get_u64(state, ESCROW_KEY)
    if amount > held:
        raise LedgerError(errors.AGENTS_ESCROW_SHORT, f"release {amount} > escrow {held}")
    put_u64(state, ESCROW_KEY, held - amount)
    accounts.credit(state, to, amount)


def slash(state: Journal, height: int, address: bytes, amount: int) -> int:
    """Take up to `amount` of the address's bonded stake (the Datanets' slashing rule, through
    `accounts.set_stake`) into the pool; returns what was taken."""
    taken = datanet_rules.slash(state, height, address, amount)
    put_u64(state, POOL_KEY, get_u64(state, POOL_KEY) + taken)
    return taken


def active_agents(state: Journal, operator: bytes) -> int:
    return get_u32(state, operator_key(operator))


def change_active(state: Journal, operator: bytes, delta: int) -> None:
    put_u32(state, operator_key(operator), active_agents(state, operator) + delta)


def required_stake(state: Journal, agents: int) -> int:
    return params.get(state, "agents_min_stake") * agents


def check_stake(state: Journal, operator: bytes, agents: int) -> None:
    """The operator's bonded stake covers agents_min_stake for each of `agents` active agents."""
    need = required_stake(state, agents)
    have = accounts.get_account(state, operator).stake
    if have < need:
        raise LedgerError(errors.AGENT_STAKE_TOO_LOW, f"bonded {have} < {need} for {agents} active agent(s)")


def _outcome(state: Journal, agent: Agent, good: bool, height: int) -> None:
    """Record a verified outcome (or a missed deadline, as bad) on the agent and on its operator's
    `agent` reputation; a bad one that takes the score below the floor suspends an active agent."""
    reliability.record(agent, good, height, half_life(state), SCALE)
    reputation.record_outcome(state, agent.operator, Role.AGENT, good, height)
    if good or agent.status != AgentStatus.ACTIVE:
        return
    if reliability.score(agent, height, half_life(state)) < params.get(state, "agents_suspend_floor_bps"):
        agent.status = AgentStatus.SUSPENDED
        agent.suspended_until = height + params.get(state, "agents_suspension_blocks")
        change_active(state, agent.operator, -1)


def pay(state: Journal, task: Task, agent: Agent, height: int) -> None:
    """Close a submitted task as paid: the operator gets the fee scaled by the agent's score, the
    consumer the rest."""
    score = reliability.score(agent, height, half_life(state))
    task.paid = reliability.payout(task.fee, score, params.get(state, "agents_full_pay_score_bps"))
    task.refunded = task.fee - task.paid
    release(state, agent.operator, task.paid)
    release(state, task.consumer, task.refunded)
    task.status, task.closed = TaskStatus.PAID, height
    agent.paid += 1
    agent.earned += task.paid


def verdict(state: Journal, task: Task, passed: bool, height: int) -> None:
    """A verifier's verdict on a sampled task: pay now, or refund, slash and lower the agent's score; either
    way the verifier is paid agents_verifier_reward from the pool (as far as it holds), so cheaters' stake
    pays for the checking, and a verdict pays the same whichever way it goes."""
    agent = get_agent(state, task.agent)
    task.verdict = 1 if passed else 2
    _outcome(state, agent, passed, height)
    if passed:
        agent.verified_good += 1
        pay(state, task, agent, height)
    else:
        agent.verified_bad += 1
        task.refunded = task.fee
        release(state, task.consumer, task.fee)
        cut = params.get(state, "agents_slash_bps") * params.get(state, "agents_min_stake") // BPS
        task.slashed = slash(state, height, task.operator, cut)
        agent.slashed += task.slashed
        task.status, task.closed = TaskStatus.FAILED, height
    task.reward = min(get_u64(state, POOL_KEY), params.get(state, "agents_verifier_reward"))
    if task.reward:
        put_u64(state, POOL_KEY, get_u64(state, POOL_KEY) - task.reward)
        accounts.credit(state, task.verifier, task.reward)
    put_agent(state, agent)
    put_task(state, task)


def expire(state: Journal, task: Task, height: int) -> None:
    """No result by the deadline: the consumer gets the fee back and the agent's score goes down."""
    agent = get_agent(state, task.agent)
    release(state, task.consumer, task.fee)
    task.refunded = task.fee
    task.status, task.closed = TaskStatus.EXPIRED, height
    agent.expired += 1
    _outcome(state, agent, False, height)
    put_agent(state, agent)
    put_task(state, task)


def end_block(state: Journal, height: int, seed: bytes) -> None:
    """Do what is due at this height: open tasks past their result window expire; results submitted in the
    block before are drawn for verification with this block's seed; submitted tasks whose verification
    window ends without a verdict are paid unverified."""
    for tid in due(state, height):
        task = find_task(state, tid)
        if task is None:
            continue
        if task.status == TaskStatus.OPEN and task.result_deadline == height:
            expire(state, task, height)
        elif task.status == TaskStatus.SUBMITTED and task.draw_height == height and task.sampled == Draw.PENDING:
            task.sampled = Draw.VERIFY if reliability.drawn(seed, task.id, task.sample_rate_bps) else Draw.SKIP
            put_task(state, task)
        elif task.status == TaskStatus.SUBMITTED and task.verify_deadline == height:
            agent = get_agent(state, task.agent)
            pay(state, task, agent, height)
            put_agent(state, agent)
            put_task(state, task)
