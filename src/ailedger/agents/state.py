"""Agents state: agents, the task-type index, verifiers, tasks, the per-height queue, escrow and the pool.

Layout (every key under `ag/`):
  ag/a/<name>               -> Agent: operator, model, policy, tools, task types, price, status, Beta, counters
  ag/an, ag/ai/<u32 i>      -> number of agents; the i-th agent's name (registration order)
  ag/tt/<task type>         -> list of the names of agents that ever offered the type (routing reads it)
  ag/op/<b20 operator>      -> u32 active agents of the operator (its stake must cover min_stake each)
  ag/v/<b20 address>        -> u64 height the verifier registered at
  ag/tn                     -> u64 number of tasks (ids run 1..n)
  ag/t/<u64 id>             -> Task
  ag/q/<u64 height>         -> repeated u64 id: tasks with a deadline at the end of that block
  ag/escrow                 -> u64 fees held by open and submitted tasks
  ag/pool                   -> u64 stake slashed from operators of agents that failed verification, less the
                               verifiers' rewards paid from it

Why the Beta lives in the agent record and not only in the reputation module: routing and pay weigh one
agent, while the reputation module keys by account; an operator with two agents must not lend one's
record to the other. The operator's `agent` role in the reputation module moves too, for other modules.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ailedger.agents.payloads import MAX_CHECKER, MAX_MODEL_REF, MAX_NAME, MAX_TASK_TYPE, MAX_TOOL_NAME
from ailedger.chain import queue
from ailedger.chain.params import Reader
from ailedger.chain.state import Journal
from ailedger.core import errors
from ailedger.core.encoding import AMOUNT, B20, B32, U8, U32, U64, ListOf, Record, Text
from ailedger.core.errors import LedgerError
from ailedger.reputation.beta import PRIOR

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
MAX_PER_TASK_TYPE = 4_096  # agents one task type may list; routing reads at most this many records


class AgentStatus:
    ACTIVE = 1
    SUSPENDED = 2  # verified reliability fell below agents_suspend_floor_bps; reinstate after suspended_until
    RETIRED = 3  # by its operator; final


AGENT_STATUS_NAMES = {1: "active", 2: "suspended", 3: "retired"}


class TaskStatus:
    OPEN = 1  # waiting for the agent's result until result_deadline
    SUBMITTED = 2  # result in; pay held until verify_deadline (or a verdict, when sampled)
    PAID = 3  # the operator was paid (verified good, or unverified at the window's end)
    FAILED = 4  # verified bad: consumer refunded, operator slashed
    EXPIRED = 5  # no result in time: consumer refunded


TASK_STATUS_NAMES = {1: "open", 2: "submitted", 3: "paid", 4: "failed", 5: "expired"}


class Draw:
    """Whether a submitted task is verified. Why the draw waits a block: the seed of the block carrying the
    result is its parent's hash, which the operator knows before sending, so it could wait for a block
    that would not draw it; the next block's seed is the hash of the block holding the result itself."""

    PENDING = 0
    VERIFY = 1
    SKIP = 2


DRAW_NAMES = {0: "pending", 1: "verify", 2: "skip"}
HELD = (TaskStatus.OPEN, TaskStatus.SUBMITTED)


@dataclass
class Agent:
    name: str
    operator: bytes
    model: str
    policy_hash: bytes
    tools: list[str]
    task_types: list[str]
    price: int
    status: int
    registered: int  # height
    alpha: int = PRIOR  # verified-good evidence (fixed point, reputation.beta)
    beta: int = PRIOR  # verified-bad evidence and missed deadlines
    rep_height: int = 0  # height alpha and beta were last decayed to
    suspended_until: int = 0  # SUSPENDED: first height at which the operator may reinstate
    tasks: int = 0  # tasks assigned
    paid: int = 0  # tasks paid
    verified_good: int = 0
    verified_bad: int = 0
    expired: int = 0
    earned: int = 0  # micro-units paid to the operator for this agent's tasks
    slashed: int = 0  # micro-units of stake slashed for this agent's failures


AGENT = Record(Agent, {
    "name": Text(MAX_NAME), "operator": B20, "model": Text(MAX_MODEL_REF), "policy_hash": B32,
    "tools": ListOf(Text(MAX_TOOL_NAME), 8), "task_types": ListOf(Text(MAX_TASK_TYPE), 8), "price": AMOUNT,
    "status": U8, "registered": U64, "alpha": U64, "beta": U64, "rep_height": U64, "suspended_until": U64,
    "tasks": U64, "paid": U64, "verified_good": U64, "verified_bad": U64, "expired": U64, "earned": AMOUNT,
    "slashed": AMOUNT,
})


@dataclass
class Task:
    id: int
    consumer: bytes
    agent: str
    operator: bytes
    task_type: str
    input_hash: bytes
    fee: int  # held in escrow while OPEN or SUBMITTED
    checker: str
    schema_hash: bytes
    spec_hash: bytes
    status: int
    posted: int
    result_deadline: int  # last block a result is taken in; end_block of this height expires an OPEN task
    result_hash: bytes = bytes(32)
    result_height: int = 0
    sampled: int = 0  # Draw.PENDING until the end of draw_height, then Draw.VERIFY or Draw.SKIP
    sample_rate_bps: int = 0  # the rate it is drawn at (the agent's score when the result came in)
    draw_height: int = 0  # the block after the result's: its end_block draws, with that block's seed
    verify_deadline: int = 0  # last block a verdict is taken in; end_block of this height pays unverified
    verifier: bytes = bytes(20)
    verdict: int = 0  # 0 none, 1 passed, 2 failed
    report_hash: bytes = bytes(32)
    closed: int = 0  # height it was paid, failed or expired
    paid: int = 0  # to the operator
    refunded: int = 0  # to the consumer
    slashed: int = 0  # from the operator's stake, to the pool
    reward: int = 0  # paid to the verifier from the pool with its verdict


TASK = Record(Task, {
    "id": U64, "consumer": B20, "agent": Text(MAX_NAME), "operator": B20, "task_type": Text(MAX_TASK_TYPE),
    "input_hash": B32, "fee": AMOUNT, "checker": Text(MAX_CHECKER), "schema_hash": B32, "spec_hash": B32,
    "status": U8, "posted": U64, "result_deadline": U64, "result_hash": B32, "result_height": U64, "sampled": U8,
    "sample_rate_bps": U32, "draw_height": U64, "verify_deadline": U64, "verifier": B20, "verdict": U8,
    "report_hash": B32, "closed": U64, "paid": AMOUNT, "refunded": AMOUNT, "slashed": AMOUNT, "reward": AMOUNT
})
NAMES = ListOf(Text(MAX_NAME), MAX_PER_TASK_TYPE)

AGENT_COUNT_KEY = b"ag/an"
TASK_COUNT_KEY = b"ag/tn"
ESCROW_KEY = b"ag/escrow"
POOL_KEY = b"ag/pool"


def agent_key(name: str) -> bytes:
    return b"ag/a/" + name.encode()


def agent_index_key(i: int) -> bytes:
    return b"ag/ai/" + _U32.pack(i)


def task_type_key(task_type: str) -> bytes:
    return b"ag/tt/" + task_type.encode()


def operator_key(address: bytes) -> bytes:
    return b"ag/op/" + address


def verifier_key(address: bytes) -> bytes:
    return b"ag/v/" + address


def task_key(tid: int) -> bytes:
    return b"ag/t/" + _U64.pack(tid)


def queue_key(height: int) -> bytes:
    return b"ag/q/" + _U64.pack(height)


def get_u64(state: Reader, key: bytes) -> int:
    raw = state.get(key)
    return int(_U64.unpack(raw)[0]) if raw else 0


def put_u64(state: Journal, key: bytes, value: int) -> None:
    state.set(key, _U64.pack(value))


def get_u32(state: Reader, key: bytes) -> int:
    raw = state.get(key)
    return int(_U32.unpack(raw)[0]) if raw else 0


def put_u32(state: Journal, key: bytes, value: int) -> None:
    state.set(key, _U32.pack(value))


def find_agent(state: Reader, name: str) -> Agent | None:
    raw = state.get(agent_key(name))
    return AGENT.decode(raw) if raw else None


def get_agent(state: Reader, name: str) -> Agent:
    a = find_agent(state, name)
    if a is None:
        raise LedgerError(errors.AGENT_NOT_FOUND, repr(name))
    return a


def put_agent(state: Journal, a: Agent) -> None:
    state.set(agent_key(a.name), AGENT.encode(a))


def agent_names(state: Reader) -> list[str]:
    """Every agent's name in registration order."""
    return [(state.get(agent_index_key(i)) or b"").decode() for i in range(get_u32(state, AGENT_COUNT_KEY))]


def add_agent_name(state: Journal, name: str) -> None:
    n = get_u32(state, AGENT_COUNT_KEY)
    state.set(agent_index_key(n), name.encode())
    put_u32(state, AGENT_COUNT_KEY, n + 1)


def offering(state: Reader, task_type: str) -> list[str]:
    """Names of the agents that ever listed `task_type` (an update that drops it leaves the name; routing
    re-checks the agent's current types)."""
    raw = state.get(task_type_key(task_type))
    return NAMES.decode(raw) if raw else []


def add_offering(state: Journal, task_type: str, name: str) -> None:
    names = offering(state, task_type)
    if name not in names:
        state.set(task_type_key(task_type), NAMES.encode([*names, name]))


def find_task(state: Reader, tid: int) -> Task | None:
    raw = state.get(task_key(tid))
    return TASK.decode(raw) if raw else None


def get_task(state: Reader, tid: int) -> Task:
    t = find_task(state, tid)
    if t is None:
        raise LedgerError(errors.TASK_NOT_FOUND, f"task {tid}")
    return t


def put_task(state: Journal, t: Task) -> None:
    state.set(task_key(t.id), TASK.encode(t))


def schedule(state: Journal, height: int, tid: int) -> None:
    queue.append_item(state, queue_key(height), _U64.pack(tid))


def due(state: Reader, height: int) -> list[int]:
    return [int(_U64.unpack(x)[0]) for x in queue.items(state, queue_key(height), 8)]
