"""The agent economy's actors: task posters, honest agents, agents that fake success, and their verifier.

Through the agents module's transactions (docs/agents.md): an operator bonds stake and registers an
agent (the registered base model, a policy hash, the calculator tool, the `arithmetic` task type, a
price); a consumer posts a task with its fee in escrow and the `arithmetic` checker, either to an
agent it picks or routed by the ledger (highest verified score, then lowest price); the agent submits
its output's hash; a share of results drawn from the block hash (more for low scores) is verified by
a bonded verifier (drawn at the end of the block after the result, so the operator cannot pick an
unsampled block), who runs the registered checker (`agentrun.checkers.check`) on the output; pay is
held until the verification window ends. A failed verification refunds the consumer, slashes the
operator and lowers the agent's verified score; below the floor the agent is suspended.

* honest agents compute the exact answer;
* faking agents answer with well-formed JSON, `{"answer": <a number>}`, that is wrong (the exact value
  plus one), price themselves under the honest agents to win routing, and reinstate as soon as a
  suspension ends;
* consumers (buyers, not judged) post a task a block on average, half routed, half to an agent they
  pick at random among the active ones (a naive consumer, which is what gives fakers work at all);
* the verifier is the Datanet's curator, who already holds bonded stake: verifiers are not paid per
  verdict, so a stand-alone verifier would only spend fees (docs/economy.md, "what still pays").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ailedger.agentrun import arith
from ailedger.agentrun.checkers import check
from ailedger.agents import payloads as ap
from ailedger.agents.state import TASK_COUNT_KEY, AgentStatus, Draw, TaskStatus, find_agent, find_task, get_u64
from ailedger.chain.accounts import get_account
from ailedger.chain.tx import Tx
from ailedger.core.hashing import canonical_json, sha256
from ailedger.sim.actor import UNIT, Actor
from ailedger.sim.ledger import Outcome

if TYPE_CHECKING:
    from ailedger.sim.world import EconomyConfig, World

TASK_TYPE = "arithmetic"


def blob(doc: Any) -> bytes:
    """A document's hash as the ledger names it (SHA-256 of its canonical JSON)."""
    return sha256(canonical_json(doc))


@dataclass
class TaskBoard:
    """The off-ledger half of tasks: the blobs (inputs, outputs) by hash, new tasks, and first suspensions."""

    blobs: dict[bytes, Any] = field(default_factory=dict)
    seen: int = 0  # highest task id read
    new: list[int] = field(default_factory=list)  # task ids that appeared in the last block
    suspended: dict[str, int] = field(default_factory=dict)  # agent name -> first height it was suspended at

    def put(self, doc: Any) -> bytes:
        h = blob(doc)
        self.blobs[h] = doc
        return h

    def refresh(self, world: World) -> None:
        state = world.ledger.state
        self.new = list(range(self.seen + 1, get_u64(state, TASK_COUNT_KEY) + 1))
        for tid in self.new:
            task = find_task(state, tid)
            if task is not None:
                world.agent_operator(task.agent).assigned.append(tid)
        self.seen += len(self.new)
        for op in world.agent_operators:
            agent = find_agent(state, op.agent)
            if agent is not None and agent.status == AgentStatus.SUSPENDED and op.agent not in self.suspended:
                self.suspended[op.agent] = world.height


class TaskConsumer(Actor):
    role, side = "task consumer", "buyer"

    def act(self, world: World) -> list[Tx]:
        c = world.config
        if self.rng.random() >= c.tasks_per_consumer:
            return []
        a, b, k = self.rng.randint(10, 999), self.rng.randint(10, 999), self.rng.randint(2, 9)
        input_hash = world.tasks.put({"expression": f"{a} * {b} + {k}"})
        agent = ""
        if self.rng.random() < 0.5:  # a naive consumer picks an agent itself
            active = [op.agent for op in world.agent_operators if world.agent_active(op.agent)]
            agent = self.rng.choice(active) if active else ""
        task = ap.PostTask(agent, TASK_TYPE, input_hash, c.task_fee, c.task_result_blocks, "arithmetic")
        return [world.ledger.tx(self.key, ap.POST_TASK, task)]


class AgentOperator(Actor):
    """Runs one agent: computes each task's answer and submits the output's hash."""

    role = "honest agent"

    def __init__(self, name: str, seed: int, price: int) -> None:
        super().__init__(name, seed)
        self.agent = name
        self.price = price
        self.assigned: list[int] = []

    def funds(self, c: EconomyConfig) -> tuple[int, int]:
        return 20 * UNIT, c.agent_stake

    def setup(self, world: World) -> list[Tx]:
        spec = ap.AgentSpec(self.agent, world.base_model, sha256(f"policy/{self.agent}".encode()), ["calculator"],
                            [TASK_TYPE], self.price)
        return [world.ledger.tx(self.key, ap.REGISTER, spec)]

    def answer(self, value: Fraction) -> Any:
        return arith.as_number(value)

    def act(self, world: World) -> list[Tx]:
        txs = []
        state = world.ledger.state
        for tid in self.assigned:
            task = find_task(state, tid)
            if task is None or task.status != TaskStatus.OPEN:
                continue
            expression = world.tasks.blobs[task.input_hash]["expression"]
            result_hash = world.tasks.put({"answer": self.answer(arith.evaluate(expression))})
            txs.append(world.ledger.tx(self.key, ap.SUBMIT_RESULT, ap.SubmitResult(tid, result_hash)))
        self.assigned = []
        return txs

    def observe(self, world: World, outcome: Outcome) -> None:
        agent = find_agent(world.ledger.state, self.agent)
        self.slashed = agent.slashed if agent is not None else 0


class FakingAgent(AgentOperator):
    role, side = "faking agent", "dishonest"

    def answer(self, value: Fraction) -> Any:
        return arith.as_number(value + 1)  # well-formed, plausible, wrong

    def act(self, world: World) -> list[Tx]:
        agent = find_agent(world.ledger.state, self.agent)
        if agent is not None and agent.status == AgentStatus.SUSPENDED and world.height + 1 >= agent.suspended_until:
            return [world.ledger.tx(self.key, ap.REINSTATE, ap.Named(self.agent)), *super().act(world)]
        return super().act(world)


class AgentVerifier:
    """A verifier's duty, done by an actor with bonded stake: check every sampled result, post the verdict."""

    def __init__(self) -> None:
        self.todo: set[int] = set()  # tasks that may still be sampled

    def setup(self, world: World, actor: Actor) -> list[Tx]:
        return [world.ledger.tx(actor.key, ap.REGISTER_VERIFIER, ap.RegisterVerifier(1))]

    def act(self, world: World, actor: Actor) -> list[Tx]:
        self.todo.update(world.tasks.new)
        state = world.ledger.state
        if get_account(state, actor.address).stake < world.param("agents_verifier_min_stake"):
            return []  # slashed (as a Datanet validator) below what a verdict needs
        txs = []
        for tid in sorted(self.todo):
            task = find_task(state, tid)
            if task is None or task.status not in (TaskStatus.OPEN, TaskStatus.SUBMITTED) or task.sampled == Draw.SKIP:
                self.todo.discard(tid)  # closed, or drawn not to be verified
                continue
            if task.status == TaskStatus.OPEN or task.sampled != Draw.VERIFY:
                continue  # no result yet, or the draw (at the end of the block after the result) is still to come
            self.todo.discard(tid)
            output = world.tasks.blobs.get(task.result_hash)
            outcome = check(task.checker, world.tasks.blobs[task.input_hash], output)
            txs.append(world.ledger.tx(actor.key, ap.VERDICT,
                                       ap.Verdict(tid, int(outcome.passed), world.tasks.put(outcome.to_json()))))
        return txs
