"""The registered checkers (ids in `agents.catalog.CHECKERS`): deterministic judgements of a task's output.

A verifier fetches the task's input, spec, schema and output blobs by their on-ledger hashes, runs
`check`, and posts the verdict; anyone can re-run it on the same blobs and get the same verdict. The
code checker runs untrusted code, so it runs in a separate Python process (isolated mode, a temporary
directory, a timeout) and never inside the state machine.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ailedger.agentrun import arith, units
from ailedger.agentrun.tools import exact_text
from ailedger.agents.catalog import CHECKERS, REVIEW
from ailedger.core import errors
from ailedger.core.errors import LedgerError

DEFAULT_TOLERANCE = Fraction(1, 10**9)
DEFAULT_TIMEOUT_S = 10
MAX_TIMEOUT_S = 60


@dataclass(frozen=True)
class Outcome:
    passed: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "reason": self.reason, **self.details}


class MalformedOutput(LedgerError):
    """The agent's output lacks what its checker reads: a failed check (the agent's fault), not an error."""


def _field(doc: Any, name: str, what: str) -> Any:
    if not isinstance(doc, dict) or name not in doc:
        cls = MalformedOutput if what == "output" else LedgerError
        raise cls(errors.TASK_OUTPUT_INVALID, f"the {what} has no {name!r}")
    return doc[name]


def _tolerance(spec: dict[str, Any]) -> Fraction:
    return arith.parse_number(spec["tolerance"]) if "tolerance" in spec else DEFAULT_TOLERANCE


def _numeric(answer: Any, expected: Fraction, spec: dict[str, Any]) -> Outcome:
    try:
        got = arith.parse_number(answer)
    except LedgerError:
        return Outcome(False, f"the answer {answer!r} is not a number")
    ok = arith.close(got, expected, _tolerance(spec))
    return Outcome(ok, "matches" if ok else "differs", {"expected": exact_text(expected), "answer": str(answer)})


def arithmetic(task: dict[str, Any], output: Any, spec: dict[str, Any]) -> Outcome:
    expected = arith.evaluate(str(_field(task, "expression", "task input")))
    return _numeric(_field(output, "answer", "output"), expected, spec)


def unit_conversion(task: dict[str, Any], output: Any, spec: dict[str, Any]) -> Outcome:
    value = arith.parse_number(_field(task, "value", "task input"))
    expected = units.convert(value, str(_field(task, "from", "task input")), str(_field(task, "to", "task input")))
    return _numeric(_field(output, "answer", "output"), expected, spec)


def normalise(answer: str) -> str:
    return " ".join(answer.strip().lower().split())


def reference_hash(answer: str) -> str:
    """What a task poster puts in the spec as `answer_sha256` for a held-out reference answer."""
    return hashlib.sha256(normalise(answer).encode()).hexdigest()


def reference(task: dict[str, Any], output: Any, spec: dict[str, Any]) -> Outcome:
    want = str(_field(spec, "answer_sha256", "spec")).lower()
    ok = reference_hash(str(_field(output, "answer", "output"))) == want
    return Outcome(ok, "matches the reference" if ok else "differs from the reference")


def code_tests(task: dict[str, Any], output: Any, spec: dict[str, Any]) -> Outcome:
    """The output's code, then the task's tests, in a fresh isolated interpreter; passes on exit 0."""
    code, tests = str(_field(output, "code", "output")), str(_field(task, "tests", "task input"))
    timeout = min(MAX_TIMEOUT_S, int(spec.get("timeout_s", DEFAULT_TIMEOUT_S)))
    with tempfile.TemporaryDirectory(prefix="ailedger-check-") as tmp:
        try:
            run = subprocess.run([sys.executable, "-I", "-c", code + "\n\n" + tests], cwd=tmp, capture_output=True,
                                 text=True, timeout=timeout, env={"PYTHONHASHSEED": "0"}, check=False)
        except subprocess.TimeoutExpired:
            return Outcome(False, f"timed out after {timeout} s")
    tail = (run.stderr or "").strip().splitlines()[-1:] or [""]
    return Outcome(run.returncode == 0, "tests passed" if run.returncode == 0 else f"tests failed: {tail[0]}",
                   {"exit_code": run.returncode})


CHECKS: dict[str, Callable[[dict[str, Any], Any, dict[str, Any]], Outcome]] = {
    "arithmetic": arithmetic, "unit_conversion": unit_conversion, "code_tests": code_tests, "reference": reference,
}
assert set(CHECKS) | {REVIEW} == set(CHECKERS), "every registered checker but review has one implementation"


def check_schema(schema: dict[str, Any], output: Any) -> Outcome:
    import jsonschema

    try:
        jsonschema.validate(output, schema)
    except jsonschema.ValidationError as exc:
        return Outcome(False, f"schema: {exc.message}")
    except jsonschema.SchemaError as exc:
        raise LedgerError(errors.TASK_OUTPUT_INVALID, f"the output schema is not a JSON schema: {exc.message}") from exc
    return Outcome(True, "schema ok")


def check(checker: str, task: Any, output: Any, spec: Any = None, schema: Any = None) -> Outcome:
    """Judge `output` (the parsed output JSON) for a task: the schema first (when given), then the checker
    (when given and not `review`, which needs a person: `task_verdict_needed`). An output that lacks what
    the checker reads fails; an input or spec that lacks what it needs is the poster's error
    (`task_output_invalid`), as no output could pass."""
    if checker and checker not in CHECKERS:
        raise LedgerError(errors.TASK_UNKNOWN_CHECKER, repr(checker))
    if not isinstance(task, dict):
        raise LedgerError(errors.TASK_OUTPUT_INVALID, "the task input is not a JSON object")
    if schema is not None:
        if not isinstance(schema, dict):
            raise LedgerError(errors.TASK_OUTPUT_INVALID, "the output schema is not a JSON object")
        verdict = check_schema(schema, output)
        if not verdict.passed or not checker:
            return verdict
    if checker == REVIEW:
        raise LedgerError(errors.TASK_VERDICT_NEEDED, "checker review")
    if not checker:
        raise LedgerError(errors.TASK_BAD_SPEC, "neither a checker nor a schema")
    try:
        return CHECKS[checker](task, output, spec if isinstance(spec, dict) else {})
    except MalformedOutput as exc:
        return Outcome(False, f"malformed output: {exc.detail}")


def parse_json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(errors.TASK_OUTPUT_INVALID, f"the {what} is not JSON") from exc
