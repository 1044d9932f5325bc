"""Agents transaction payloads (0x0801..0x0808): the Python API that the CLI, tests and the simulation build.

Each transaction is a frozen dataclass and a codec; `CODECS` maps a type id to its codec, so a driver
(the economy simulation, a test) signs `CODECS[t].encode(payload)` with `chain.tx.sign_tx`. Every field
is an integer, a hash or bounded text: the ledger holds hashes, the blob store holds the documents
(policies, task inputs, verification specs, outputs, verifier reports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ailedger.agents.catalog import MAX_TASK_TYPES, MAX_TOOLS
from ailedger.core.encoding import AMOUNT, B32, U8, U32, U64, Codec, ListOf, Record, Text

REGISTER = 0x0801
UPDATE = 0x0802
RETIRE = 0x0803
REINSTATE = 0x0804
REGISTER_VERIFIER = 0x0805
POST_TASK = 0x0806
SUBMIT_RESULT = 0x0807
VERDICT = 0x0808

MAX_NAME = 64
MAX_MODEL_REF = 80  # a base name, or NAME@N for one adapter version
MAX_TOOL_NAME = 32
MAX_TASK_TYPE = 32
MAX_CHECKER = 32


@dataclass(frozen=True)
class AgentSpec:
    """register (a new name, owned by the sender from then on) and update (the operator replaces every field).

    `model` is a registered base model's name or an adapter version `NAME@N`; `policy_hash` is the sha256
    of the policy blob (its system prompt); `price` is micro-units per task."""

    name: str
    model: str
    policy_hash: bytes
    tools: list[str] = field(default_factory=list)
    task_types: list[str] = field(default_factory=list)
    price: int = 0


@dataclass(frozen=True)
class Named:
    name: str


@dataclass(frozen=True)
class RegisterVerifier:
    """Register the sender as a verifier; it must keep agents_verifier_min_stake bonded to post verdicts."""

    version: int = 1  # the verifier software's protocol version (1 today); keeps the payload non-empty


@dataclass(frozen=True)
class PostTask:
    """A task with its fee in escrow. `agent` "" routes it (docs/agents.md, routing); `result_blocks` is the
    window for the result; `checker` "" and/or `schema_hash` zeros mean that check is not asked."""

    agent: str
    task_type: str
    input_hash: bytes
    fee: int
    result_blocks: int
    checker: str = ""
    schema_hash: bytes = bytes(32)
    spec_hash: bytes = bytes(32)  # the checker's arguments (say a reference's hash, a timeout); zeros: none


@dataclass(frozen=True)
class SubmitResult:
    task: int
    result_hash: bytes


@dataclass(frozen=True)
class Verdict:
    task: int
    passed: int  # 1 the output passed every check, 0 it failed one
    report_hash: bytes = bytes(32)  # the verifier's report blob (checker output); zeros: none


AGENT_SPEC_CODEC = Record(AgentSpec, {"name": Text(MAX_NAME), "model": Text(MAX_MODEL_REF), "policy_hash": B32,
                                      "tools": ListOf(Text(MAX_TOOL_NAME), MAX_TOOLS),
                                      "task_types": ListOf(Text(MAX_TASK_TYPE), MAX_TASK_TYPES), "price": AMOUNT})
NAMED_CODEC = Record(Named, {"name": Text(MAX_NAME)})
REGISTER_VERIFIER_CODEC = Record(RegisterVerifier, {"version": U8})
POST_TASK_CODEC = Record(PostTask, {"agent": Text(MAX_NAME), "task_type": Text(MAX_TASK_TYPE), "input_hash": B32,
                                    "fee": AMOUNT, "result_blocks": U32, "checker": Text(MAX_CHECKER),
                                    "schema_hash": B32, "spec_hash": B32})
SUBMIT_RESULT_CODEC = Record(SubmitResult, {"task": U64, "result_hash": B32})
VERDICT_CODEC = Record(Verdict, {"task": U64, "passed": U8, "report_hash": B32})

CODECS: dict[int, Codec[Any]] = {
    REGISTER: AGENT_SPEC_CODEC, UPDATE: AGENT_SPEC_CODEC, RETIRE: NAMED_CODEC, REINSTATE: NAMED_CODEC,
    REGISTER_VERIFIER: REGISTER_VERIFIER_CODEC, POST_TASK: POST_TASK_CODEC, SUBMIT_RESULT: SUBMIT_RESULT_CODEC,
    VERDICT: VERDICT_CODEC,
}
