"""The agent runner on the tiny model through the real serving engine: base and adapter agents, planned
tool use, tool calls parsed from the model's text, and the output document the checkers read."""

from __future__ import annotations

import pytest

from ailedger.agentrun.checkers import check
from ailedger.agentrun.runner import AgentRunner, AgentSpec, find_call, output_doc, run_call
from ailedger.factory.basemodel import load_base
from ailedger.factory.tiny import build_tiny
from ailedger.serving.catalog import Catalog
from ailedger.serving.stack import served_base
from ailedger.serving.synthetic import random_adapter


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> AgentRunner:
    root = tmp_path_factory.mktemp("agentrun")
    tiny = build_tiny(root / "tiny", seed=11)
    base = load_base(tiny)
    random_adapter(base, root / "adapters" / "sharp", seed=3, b_std=0.5)
    base = load_base(tiny)  # a fresh copy: the runner injects LoRA slots into it
    return AgentRunner(base, Catalog.from_directory(served_base(base), root / "adapters"), max_tokens=12)


def agent(model: str, tools: list[str] | None = None) -> AgentSpec:
    return AgentSpec("a", model, ["calculator", "unit_converter"] if tools is None else tools,
                     "Answer with the number only.")


def test_base_and_adapter_agents_answer_deterministically(runner: AgentRunner) -> None:
    task = {"prompt": "What is 6 times 7?"}
    on_base = runner.run(agent("tiny", []), "qa", task)
    again = runner.run(agent("tiny", []), "qa", task)
    on_adapter = runner.run(agent("sharp@1", []), "qa", task)
    assert on_base.output == again.output  # greedy: the same weights give the same output
    assert on_base.completion_tokens >= 1 and on_base.prompt_tokens > 0
    assert on_adapter.output["text"] != on_base.output["text"]  # the adapter's weights answered
    assert on_adapter.output["model"] == "sharp@1"


def test_planned_tools_answer_structured_tasks_and_pass_their_checkers(runner: AgentRunner) -> None:
    arith = {"expression": "2 ** 10 / 8"}
    done = runner.run(agent("tiny"), "arithmetic", arith)
    assert done.output["answer"] == "128" and check("arithmetic", arith, done.output).passed
    conv = {"value": 2, "from": "mi", "to": "km"}
    done = runner.run(agent("sharp@1"), "unit_conversion", conv)
    assert done.tool_calls[0]["tool"] == "unit_converter" and check("unit_conversion", conv, done.output).passed
    without = runner.run(agent("tiny", []), "arithmetic", arith)  # no calculator: the model alone
    assert without.tool_calls == [] and not check("arithmetic", arith, without.output).passed


def test_tool_calls_in_text_and_the_output_document() -> None:
    text = 'Let me see. <tool name="shell">ls</tool> <tool name="calculator"> 3*(4+1) </tool>'
    assert find_call(text, ["calculator"]) == ("calculator", "3*(4+1)")
    assert find_call(text, []) is None
    assert run_call("calculator", "3*(4+1)") == "15" and run_call("calculator", "1/0").startswith("error: ")
    doc = output_doc(agent("tiny"), "code", "Here:\n```python\ndef f():\n    return 1\n```", None, [])
    assert doc["code"] == "def f():\n    return 1\n"
    assert check("code_tests", {"tests": "assert f() == 1"}, doc).passed
    assert output_doc(agent("tiny"), "arithmetic", "It is 1,024 I think", None, [])["answer"] == "1024"
