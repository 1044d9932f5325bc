"""Agents transactions (0x0801..0x0808). Each handler checks everything before its first write, so a
refused transaction leaves state as it was (the runtime also rolls back a failed handler's writes)."""

from __future__ import annotations

from ailedger.agents import catalog, reliability, rules
from ailedger.agents.payloads import AgentSpec, Named, PostTask, RegisterVerifier, SubmitResult, Verdict
from ailedger.agents.state import (
    TASK_COUNT_KEY,
    Agent,
    AgentStatus,
    Draw,
    Task,
    TaskStatus,
    add_agent_name,
    add_offering,
    find_agent,
    get_agent,
    get_task,
    get_u64,
    offering,
    put_agent,
    put_task,
    put_u64,
    schedule,
    verifier_key,
)
from ailedger.chain import accounts, params
from ailedger.chain.module import BlockContext
from ailedger.chain.params import Reader
from ailedger.chain.state import Journal
from ailedger.chain.tx import Tx
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.models import state as models


def check_spec(state: Reader, p: AgentSpec) -> None:
    """The agent's fields are well formed, its tools registered and its model on the ledger."""
    if not catalog.name_ok(p.name):
        raise LedgerError(errors.AGENT_INVALID, f"name {p.name!r}")
    if not any(p.policy_hash):
        raise LedgerError(errors.AGENT_INVALID, "the policy hash is zero")
    if not p.task_types or len(set(p.task_types)) != len(p.task_types) or not all(
            catalog.task_type_ok(t) for t in p.task_types):
        raise LedgerError(errors.AGENT_INVALID, f"task types {p.task_types!r}")
    for tool in p.tools:
        if tool not in catalog.TOOLS:
            raise LedgerError(errors.AGENT_UNKNOWN_TOOL, repr(tool))
    if len(set(p.tools)) != len(p.tools):
        raise LedgerError(errors.AGENT_INVALID, "a tool is listed twice")
    check_model(state, p.model)


def check_model(state: Reader, model: str) -> None:
    name, at, version = model.partition("@")
    if not at:
        if models.get_base(state, name) is None:
            raise LedgerError(errors.AGENT_MODEL_UNAVAILABLE, f"no base model {name!r}")
        return
    canonical = version.isascii() and version.isdigit() and str(int(version)) == version  # "2", never "02"
    adapter = models.get_adapter(state, name, int(version)) if canonical else None
    if adapter is None or adapter.retired:
        raise LedgerError(errors.AGENT_MODEL_UNAVAILABLE, f"{model!r} is not a live adapter version")


def _own(state: Reader, name: str, sender: bytes) -> Agent:
    agent = get_agent(state, name)
    if agent.operator != sender:
        raise LedgerError(errors.AGENT_NOT_OPERATOR, f"agent {name}")
    return agent


def apply_register(state: Journal, ctx: BlockContext, tx: Tx, p: AgentSpec) -> None:
    check_spec(state, p)
    if find_agent(state, p.name) is not None:
        raise LedgerError(errors.AGENT_EXISTS, repr(p.name))
    sender = tx.sender_address
    rules.check_stake(state, sender, rules.active_agents(state, sender) + 1)
    put_agent(state, Agent(p.name, sender, p.model, p.policy_hash, list(p.tools), list(p.task_types), p.price,
                           AgentStatus.ACTIVE, ctx.height, rep_height=ctx.height))
    add_agent_name(state, p.name)
    for t in p.task_types:
        add_offering(state, t, p.name)
    rules.change_active(state, sender, 1)


def apply_update(state: Journal, ctx: BlockContext, tx: Tx, p: AgentSpec) -> None:
    """Replace the model, policy, tools, task types and price; the score, status and counters stay."""
    agent = _own(state, p.name, tx.sender_address)
    check_spec(state, p)
    if agent.status == AgentStatus.RETIRED:
        raise LedgerError(errors.AGENT_RETIRED, repr(p.name))
    agent.model, agent.policy_hash, agent.price = p.model, p.policy_hash, p.price
    agent.tools, agent.task_types = list(p.tools), list(p.task_types)
    for t in p.task_types:
        add_offering(state, t, p.name)
    put_agent(state, agent)


def apply_retire(state: Journal, ctx: BlockContext, tx: Tx, p: Named) -> None:
    """Stop taking tasks for good; tasks already taken run to their end (and can still be slashed)."""
    agent = _own(state, p.name, tx.sender_address)
    if agent.status == AgentStatus.RETIRED:
        raise LedgerError(errors.AGENT_RETIRED, repr(p.name))
    if agent.status == AgentStatus.ACTIVE:
        rules.change_active(state, agent.operator, -1)
    agent.status = AgentStatus.RETIRED
    put_agent(state, agent)


def apply_reinstate(state: Journal, ctx: BlockContext, tx: Tx, p: Named) -> None:
    """A suspended agent returns after its suspension, on probation: its stake must again cover
    agents_min_stake, and its Beta is kept, so one more failure suspends it again."""
    agent = _own(state, p.name, tx.sender_address)
    if agent.status != AgentStatus.SUSPENDED or ctx.height < agent.suspended_until:
        raise LedgerError(errors.AGENT_NOT_SUSPENDED,
                          f"status {agent.status}, suspended until {agent.suspended_until}, now {ctx.height}")
    rules.check_stake(state, agent.operator, rules.active_agents(state, agent.operator) + 1)
    agent.status = AgentStatus.ACTIVE
    rules.change_active(state, agent.operator, 1)
    put_agent(state, agent)


def apply_register_verifier(state: Journal, ctx: BlockContext, tx: Tx, p: RegisterVerifier) -> None:
    sender = tx.sender_address
    if state.get(verifier_key(sender)) is not None:
        raise LedgerError(errors.VERIFIER_EXISTS)
    _verifier_stake(state, sender)
    put_u64(state, verifier_key(sender), ctx.height)


def _verifier_stake(state: Journal, address: bytes) -> None:
    need = params.get(state, "agents_verifier_min_stake")
    have = accounts.get_account(state, address).stake
    if have < need:
        raise LedgerError(errors.VERIFIER_STAKE_TOO_LOW, f"bonded {have} < {need}")


def route(state: Journal, task_type: str, fee: int, height: int, exclude: bytes = bytes(20)) -> Agent:
    """The agent a task without a named agent goes to (order in reliability.py), or `task_no_route`; agents
    whose operator's stake no longer covers its active agents are passed over."""
    best: tuple[int, int, int] | None = None
    chosen: Agent | None = None
    half_life = params.get(state, "reputation_half_life_blocks")
    for i, name in enumerate(offering(state, task_type)):
        a = find_agent(state, name)
        if (a is None or a.status != AgentStatus.ACTIVE or task_type not in a.task_types or a.price > fee
                or a.operator == exclude or accounts.get_account(state, a.operator).stake
                < rules.required_stake(state, rules.active_agents(state, a.operator))):
            continue
        key = (-reliability.score(a, height, half_life), a.price, i)
        if best is None or key < best:
            best, chosen = key, a
    if chosen is None:
        raise LedgerError(errors.TASK_NO_ROUTE, f"task type {task_type!r} at fee {fee}")
    return chosen


def check_task(state: Reader, p: PostTask) -> None:
    if not catalog.task_type_ok(p.task_type) or not any(p.input_hash):
        raise LedgerError(errors.TASK_BAD_SPEC, "task type or input hash")
    if p.checker and p.checker not in catalog.CHECKERS:
        raise LedgerError(errors.TASK_UNKNOWN_CHECKER, repr(p.checker))
    if not p.checker and not any(p.schema_hash):
        raise LedgerError(errors.TASK_BAD_SPEC, "name a checker, an output schema hash, or both")
    if not 1 <= p.result_blocks <= params.get(state, "agents_max_result_blocks"):
        raise LedgerError(errors.TASK_BAD_SPEC, f"result window {p.result_blocks} blocks")


def apply_post_task(state: Journal, ctx: BlockContext, tx: Tx, p: PostTask) -> None:
    check_task(state, p)
    consumer = tx.sender_address
    if p.agent:
        agent = get_agent(state, p.agent)
        if agent.status == AgentStatus.SUSPENDED:
            raise LedgerError(errors.AGENT_SUSPENDED, repr(p.agent))
        if agent.status != AgentStatus.ACTIVE:
            raise LedgerError(errors.AGENT_RETIRED, repr(p.agent))
        if p.task_type not in agent.task_types:
            raise LedgerError(errors.TASK_NO_ROUTE, f"{p.agent} does not offer {p.task_type!r}")
        if agent.operator == consumer:
            raise LedgerError(errors.TASK_OWN_AGENT, repr(p.agent))
        if p.fee < agent.price:
            raise LedgerError(errors.TASK_FEE_BELOW_PRICE, f"fee {p.fee} < price {agent.price}")
    else:
        agent = route(state, p.task_type, p.fee, ctx.height, exclude=consumer)
    rules.check_stake(state, agent.operator, rules.active_agents(state, agent.operator))
    balance = accounts.get_account(state, consumer).balance
    if balance < p.fee:
        raise LedgerError(errors.TASK_FEE_UNFUNDED, f"balance {balance} < fee {p.fee}")
    rules.hold(state, consumer, p.fee)
    tid = get_u64(state, TASK_COUNT_KEY) + 1
    put_u64(state, TASK_COUNT_KEY, tid)
    task = Task(tid, consumer, agent.name, agent.operator, p.task_type, p.input_hash, p.fee, p.checker,
                p.schema_hash, p.spec_hash, TaskStatus.OPEN, ctx.height, ctx.height + p.result_blocks)
    put_task(state, task)
    schedule(state, task.result_deadline, tid)
    agent.tasks += 1
    put_agent(state, agent)


def apply_submit_result(state: Journal, ctx: BlockContext, tx: Tx, p: SubmitResult) -> None:
    """The operator's result; whether it is verified is drawn at the end of the next block (`Draw`)."""
    task = get_task(state, p.task)
    if task.operator != tx.sender_address:
        raise LedgerError(errors.TASK_NOT_YOURS, f"task {p.task}")
    if ctx.height > task.result_deadline:
        raise LedgerError(errors.TASK_RESULT_LATE, f"deadline {task.result_deadline}, now {ctx.height}")
    if task.status != TaskStatus.OPEN:
        raise LedgerError(errors.TASK_NOT_OPEN, f"task {p.task}")
    if not any(p.result_hash):
        raise LedgerError(errors.TASK_BAD_SPEC, "the result hash is zero")
    agent = get_agent(state, task.agent)
    score = reliability.score(agent, ctx.height, rules.half_life(state))
    rate = reliability.sample_rate_bps(score, params.get(state, "agents_verify_min_bps"),
                                       params.get(state, "agents_verify_max_bps"))
    task.result_hash, task.result_height, task.sample_rate_bps = p.result_hash, ctx.height, rate
    task.sampled, task.draw_height = Draw.PENDING, ctx.height + 1
    task.verify_deadline = task.draw_height + params.get(state, "agents_verify_window_blocks")
    task.status = TaskStatus.SUBMITTED
    schedule(state, task.draw_height, task.id)
    schedule(state, task.verify_deadline, task.id)
    put_task(state, task)


def apply_verdict(state: Journal, ctx: BlockContext, tx: Tx, p: Verdict) -> None:
    sender = tx.sender_address
    if state.get(verifier_key(sender)) is None:
        raise LedgerError(errors.VERIFIER_NOT_REGISTERED)
    _verifier_stake(state, sender)
    if p.passed not in (0, 1):
        raise LedgerError(errors.TASK_BAD_SPEC, f"passed must be 0 or 1, got {p.passed}")
    task = get_task(state, p.task)
    if sender in (task.consumer, task.operator):
        raise LedgerError(errors.VERIFIER_CONFLICT, f"task {p.task}")
    if task.sampled == Draw.VERIFY and task.verdict == 0 and ctx.height > task.verify_deadline:
        raise LedgerError(errors.TASK_VERIFY_CLOSED, f"task {p.task}: window ended at {task.verify_deadline}")
    if task.status != TaskStatus.SUBMITTED or task.sampled != Draw.VERIFY:
        raise LedgerError(errors.TASK_NOT_SAMPLED, f"task {p.task}")
    task.verifier, task.report_hash = sender, p.report_hash
    rules.verdict(state, task, bool(p.passed), ctx.height)
