"""Read views over agents state: agent and task documents, lists, routing, and what the module holds.

The JSON here is what `/v1/agents/...`, `/v1/tasks/...` and the CLI print, and what the economy
simulation reads; `holdings` is the module's part of the total supply.
"""

from __future__ import annotations

from typing import Any

from ailedger.agents import reliability
from ailedger.agents.state import (
    AGENT_STATUS_NAMES,
    DRAW_NAMES,
    ESCROW_KEY,
    POOL_KEY,
    TASK_COUNT_KEY,
    TASK_STATUS_NAMES,
    Agent,
    Draw,
    Task,
    agent_names,
    find_agent,
    find_task,
    get_u64,
    verifier_key,
)
from ailedger.chain import params
from ailedger.chain.params import Reader
from ailedger.core.address import encode_address


def holdings(state: Reader) -> int:
    """Fees held in escrow by open and submitted tasks, plus the slashed-stake pool."""
    return get_u64(state, ESCROW_KEY) + get_u64(state, POOL_KEY)


def totals_doc(state: Reader) -> dict[str, int]:
    return {"escrow": get_u64(state, ESCROW_KEY), "pool": get_u64(state, POOL_KEY),
            "task_count": get_u64(state, TASK_COUNT_KEY), "agent_count": len(agent_names(state))}


def score(state: Reader, agent: Agent, height: int) -> int:
    return reliability.score(agent, height, params.get(state, "reputation_half_life_blocks"))


def agent_doc(state: Reader, a: Agent, height: int) -> dict[str, Any]:
    s = score(state, a, height)
    return {
        "name": a.name, "operator": encode_address(a.operator), "model": a.model, "policy_hash": a.policy_hash.hex(),
        "tools": a.tools, "task_types": a.task_types, "price": a.price,
        "status": AGENT_STATUS_NAMES.get(a.status, str(a.status)), "registered": a.registered,
        "score_bps": s, "alpha": a.alpha, "beta": a.beta,
        "pay_bps": reliability.pay_bps(s, params.get(state, "agents_full_pay_score_bps")),
        "verify_rate_bps": reliability.sample_rate_bps(s, params.get(state, "agents_verify_min_bps"),
                                                       params.get(state, "agents_verify_max_bps")),
        "suspended_until": a.suspended_until or None, "tasks": a.tasks, "paid": a.paid,
        "verified_good": a.verified_good, "verified_bad": a.verified_bad, "expired": a.expired,
        "earned": a.earned, "slashed": a.slashed,
    }


def list_agents(state: Reader, height: int, task_type: str | None = None,
                status: int | None = None) -> list[dict[str, Any]]:
    """Agents in routing order (score, then price, then registration) when a task type is given, else in
    registration order."""
    out = []
    for i, name in enumerate(agent_names(state)):
        a = find_agent(state, name)
        if a is None or (task_type is not None and task_type not in a.task_types) or (
                status is not None and a.status != status):
            continue
        out.append((i, agent_doc(state, a, height)))
    if task_type is not None:
        out.sort(key=lambda x: (-int(x[1]["score_bps"]), int(x[1]["price"]), x[0]))
    return [d for _, d in out]


def task_doc(t: Task) -> dict[str, Any]:
    def opt(b: bytes) -> str | None:
        return b.hex() if any(b) else None

    return {
        "id": t.id, "consumer": encode_address(t.consumer), "agent": t.agent, "operator": encode_address(t.operator),
        "task_type": t.task_type, "input_hash": t.input_hash.hex(), "fee": t.fee, "checker": t.checker or None,
        "schema_hash": opt(t.schema_hash), "spec_hash": opt(t.spec_hash),
        "status": TASK_STATUS_NAMES.get(t.status, str(t.status)), "posted": t.posted,
        "result_deadline": t.result_deadline, "result_hash": opt(t.result_hash),
        "result_height": t.result_height or None, "sampled": t.sampled == Draw.VERIFY,
        "draw": DRAW_NAMES.get(t.sampled) if t.result_height else None,
        "draw_height": t.draw_height or None,
        "sample_rate_bps": t.sample_rate_bps if t.result_height else None,
        "verify_deadline": t.verify_deadline or None,
        "verifier": encode_address(t.verifier) if any(t.verifier) else None,
        "verdict": {0: None, 1: "passed", 2: "failed"}.get(t.verdict), "report_hash": opt(t.report_hash),
        "closed": t.closed or None, "paid": t.paid, "refunded": t.refunded, "slashed": t.slashed,
        "verifier_reward": t.reward,
    }


def get_task_doc(state: Reader, tid: int) -> dict[str, Any] | None:
    t = find_task(state, tid)
    return task_doc(t) if t else None


def list_tasks(state: Reader, status: int | None = None, agent: str | None = None, offset: int = 0,
               limit: int = 100) -> tuple[list[dict[str, Any]], int]:
    """Tasks newest first, optionally of one status or agent; (page, number matching)."""
    matching = []
    for tid in range(get_u64(state, TASK_COUNT_KEY), 0, -1):
        t = find_task(state, tid)
        if t is not None and (status is None or t.status == status) and (agent is None or t.agent == agent):
            matching.append(t)
    return [task_doc(t) for t in matching[offset:offset + limit]], len(matching)


def is_verifier(state: Reader, address: bytes) -> bool:
    return state.get(verifier_key(address)) is not None
