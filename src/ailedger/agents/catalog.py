"""The registered sets the ledger checks names against: tools an agent may list, checkers a task may name.

Why a fixed table in code rather than ledger state: a name here is a promise that every node and every
verifier runs the same deterministic implementation (`ailedger.agentrun`); adding one is a software
release that all verifiers take, not a transaction. The ledger only checks that a name is in the set.
"""

from __future__ import annotations

import re

TOOLS: dict[str, str] = {
    "calculator": "Exact arithmetic on rationals: + - * / ** (integer powers), parentheses, decimals.",
    "unit_converter": "Converts a value between units of one dimension (length, mass, time, volume, "
                      "temperature, data).",
}

CHECKERS: dict[str, str] = {
    "arithmetic": "input {expression}; output {answer}: the answer equals the expression's exact value "
                  "(within spec {tolerance}, default 1e-9 relative).",
    "unit_conversion": "input {value, from, to}; output {answer}: equals the converted value within spec "
                       "{tolerance}, default 1e-9 relative.",
    "code_tests": "input {tests}; output {code}: the code followed by the tests runs in a fresh Python "
                  "subprocess and exits 0 within spec {timeout_s}, default 10 s.",
    "reference": "spec {answer_sha256}; output {answer}: sha256 of the normalised answer (trimmed, lower case, "
                 "runs of spaces as one) equals the held-out reference's.",
    "review": "no automatic check: a bonded verifier reads the output and judges it.",
}

REVIEW = "review"
NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}", re.ASCII)  # agent names: never a path or an option
TASK_TYPE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}", re.ASCII)
MAX_TOOLS = 8
MAX_TASK_TYPES = 8


def name_ok(name: str) -> bool:
    return NAME.fullmatch(name) is not None


def task_type_ok(task_type: str) -> bool:
    return TASK_TYPE.fullmatch(task_type) is not None
