"""The registered tools and checkers, called from Python without a model (as verifiers and the simulation do)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from ailedger.agentrun import arith, checkers, tools, units
from ailedger.agentrun.checkers import check, reference_hash
from ailedger.core.errors import LedgerError


def test_calculator_is_exact_and_refuses_anything_but_arithmetic() -> None:
    assert tools.call("calculator", "2+3*4") == "14"
    assert tools.value("calculator", "0.1+0.2") == Fraction(3, 10)  # no float rounding
    assert tools.call("calculator", "1/3") == "0.333333333333 (exactly 1/3)"
    assert tools.call("calculator", "(2^10 - 24) // 10 % 7") == "2"
    for bad in ["__import__('os')", "2**1000000", "1/0", "abs(-1)", "x+1", "2 +"]:
        with pytest.raises(LedgerError) as e:
            tools.call("calculator", bad)
        assert e.value.code.name == "agent_tool_failed"
    with pytest.raises(LedgerError) as e:
        tools.call("shell", "ls")
    assert e.value.code.name == "agent_unknown_tool"


def test_unit_converter() -> None:
    assert tools.value("unit_converter", "5 km to mi") == Fraction(5000, 1) / Fraction(1_609_344, 1000)
    assert tools.call("unit_converter", "100 c to f") == "212"
    assert units.convert(Fraction(32), "fahrenheit", "celsius") == 0
    assert tools.call("unit_converter", "1 gib to mib") == "1024"
    for bad in ["5 km to kg", "5 parsec to m", "five km to m"]:
        with pytest.raises(LedgerError):
            tools.call("unit_converter", bad)


def test_arithmetic_checker() -> None:
    task = {"expression": "2+3*4"}
    assert check("arithmetic", task, {"answer": 14}).passed
    assert check("arithmetic", task, {"answer": "14.0000000001"}).passed  # within the default 1e-9 relative
    assert not check("arithmetic", task, {"answer": 15}).passed
    assert not check("arithmetic", task, {"answer": "fourteen"}).passed  # well formed, wrong: a faker's output
    assert not check("arithmetic", task, {"answer": "14.001"}, {"tolerance": "1e-6"}).passed
    malformed = check("arithmetic", task, {"text": "14"})  # the agent's fault: a failed check
    assert not malformed.passed and "malformed output" in malformed.reason
    with pytest.raises(LedgerError) as e:  # the poster's fault: no output could pass
        check("arithmetic", {"expr": "1"}, {"answer": 1})
    assert e.value.code.name == "task_output_invalid"


def test_unit_conversion_checker() -> None:
    task = {"value": 3, "from": "ft", "to": "m"}
    assert check("unit_conversion", task, {"answer": "0.9144"}).passed
    assert not check("unit_conversion", task, {"answer": 1}).passed


def test_code_checker_runs_tests_in_a_subprocess() -> None:
    task = {"tests": "assert add(2, 3) == 5\nassert add(-1, 1) == 0"}
    assert check("code_tests", task, {"code": "def add(a, b):\n    return a + b"}).passed
    failed = check("code_tests", task, {"code": "def add(a, b):\n    return a - b"})
    assert not failed.passed and "AssertionError" in failed.reason
    slow = check("code_tests", task, {"code": "while True: pass"}, {"timeout_s": 1})
    assert not slow.passed and "timed out" in slow.reason


def test_reference_checker_compares_normalised_hashes() -> None:
    spec = {"answer_sha256": reference_hash("Paris")}
    assert check("reference", {}, {"answer": "  paris "}, spec).passed
    assert not check("reference", {}, {"answer": "Lyon"}, spec).passed


def test_schema_then_checker_and_refusals() -> None:
    schema = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "integer"}}}
    assert check("", {"expression": "1"}, {"answer": 1}, schema=schema).passed
    assert not check("arithmetic", {"expression": "1"}, {"answer": "1"}, schema=schema).passed  # not an integer
    for checker, code in [("astrology", "task_unknown_checker"), ("review", "task_verdict_needed"),
                          ("", "task_bad_spec")]:
        with pytest.raises(LedgerError) as e:
            check(checker, {"expression": "1"}, {"answer": 1})
        assert e.value.code.name == code
    with pytest.raises(LedgerError) as e:
        checkers.parse_json(b"{not json", "output")
    assert e.value.code.name == "task_output_invalid"


def test_close_is_relative_with_an_absolute_floor() -> None:
    assert arith.close(Fraction(1_000_001), Fraction(1_000_000), Fraction(1, 10**6))
    assert not arith.close(Fraction(1, 10**3), Fraction(0), Fraction(1, 10**6))
