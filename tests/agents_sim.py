"""Helpers for agents tests: a chain with an operator, a consumer, a verifier and a stranger, a registered
base model, and payload builders."""

from __future__ import annotations

from typing import Any

from ailedger.agents import payloads as ag
from ailedger.agents.state import Agent, Draw, Task, get_agent, get_task
from ailedger.chain.genesis import Allocation
from ailedger.core.hashing import sha256
from ailedger.core.keys import KeyPair
from ailedger.models import payloads as m
from tests.datanet_sim import Sim
from tests.models_sim import base

UNIT = 1_000_000
OPERATOR, CONSUMER, VERIFIER, STRANGER, RIVAL = (KeyPair.from_seed(bytes([0x80 + i]) * 32) for i in range(5))
PARAMS = {"agents_min_stake": UNIT, "agents_verifier_min_stake": UNIT, "agents_verify_window_blocks": 3,
          "agents_suspension_blocks": 5}
ALLOC = [Allocation(OPERATOR.address, 100 * UNIT, 3 * UNIT), Allocation(CONSUMER.address, 100 * UNIT),
         Allocation(VERIFIER.address, 100 * UNIT, 2 * UNIT), Allocation(STRANGER.address, 100 * UNIT),
         Allocation(RIVAL.address, 100 * UNIT, 3 * UNIT)]
POLICY = sha256(b"You are a careful calculator. Answer with the number only.")
INPUT = sha256(b'{"expression": "2+3*4"}')
RESULT = sha256(b'{"answer": 14}')


def world(**params: int) -> Sim:
    """The chain, a base model `smollm2`, and a verifier registered."""
    sim = Sim(list(ALLOC), {**PARAMS, **params})
    sim.ok((STRANGER, m.REGISTER_BASE, base()))
    sim.ok((VERIFIER, ag.REGISTER_VERIFIER, ag.RegisterVerifier()))
    return sim


def spec(name: str = "calc", price: int = 100_000, task_types: tuple[str, ...] = ("arithmetic",),
         tools: tuple[str, ...] = ("calculator",), **kw: Any) -> ag.AgentSpec:
    return ag.AgentSpec(name, kw.pop("model", "smollm2"), kw.pop("policy_hash", POLICY), list(tools),
                        list(task_types), price)


def task(agent: str = "calc", fee: int = 200_000, **kw: Any) -> ag.PostTask:
    return ag.PostTask(agent, kw.pop("task_type", "arithmetic"), kw.pop("input_hash", INPUT), fee,
                       kw.pop("result_blocks", 40), kw.pop("checker", "arithmetic"),
                       kw.pop("schema_hash", bytes(32)), kw.pop("spec_hash", bytes(32)))


def agent(sim: Sim, name: str = "calc") -> Agent:
    return get_agent(sim.state, name)


def the_task(sim: Sim, tid: int) -> Task:
    return get_task(sim.state, tid)


def until_sampled(sim: Sim, operator: KeyPair, tid: int, want: bool = True) -> None:
    """Submit the result of task `tid` in the first block after which the draw (at the end of the next
    block) comes out as `want`, and seal that next block too; empty blocks move the seeds on."""
    for _ in range(60):
        trial = sim.copy()
        trial.ok((operator, ag.SUBMIT_RESULT, ag.SubmitResult(tid, RESULT)))
        trial.block()
        if (get_task(trial.state, tid).sampled == Draw.VERIFY) == want:
            sim.ok((operator, ag.SUBMIT_RESULT, ag.SubmitResult(tid, RESULT)))
            sim.block()
            return
        sim.block()
    raise AssertionError("no block drew the wanted sample")
