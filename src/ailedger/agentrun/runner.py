"""Execute an agent on a task with the serving engine: its model (an adapter, or the base), its policy as
the system prompt, its tools, and an output document for the task's checker.

How an agent works (docs/agents.md, "running an agent"):
1. The system prompt is the agent's policy followed by the description of each tool it lists and the
   calling convention `<tool name="NAME">ARGUMENT</tool>`; the user turn is the task's `prompt`, or the
   task type and its input JSON.
2. Planned tool use: a structured task whose type matches a tool the agent lists (`arithmetic` with an
   `expression` -> calculator, `unit_conversion` with `value`/`from`/`to` -> unit_converter) is handed
   to that tool first, and the result is given to the model as a tool turn. The tool's exact result is
   the answer: a tool is part of the agent, and the checker judges the agent's output, not its model.
3. The model then generates greedily (so the same weights give the same output); when its text holds a
   tool call to a listed tool, the tool runs and its result is appended as a tool turn, up to
   MAX_TOOL_ROUNDS, then it answers.
4. Output: {"answer": ..., "text": the model's last turn, "tool_calls": [...], "model": ..., ...}; for a
   `code` task the code is the model's text without a Markdown fence, under "code".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ailedger.agentrun import tools
from ailedger.agents.catalog import TOOLS
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory.basemodel import BaseModel
from ailedger.factory.chat import render
from ailedger.serving.catalog import Catalog
from ailedger.serving.engine import Request
from ailedger.serving.stack import Stack, build_stack

MAX_TOOL_ROUNDS = 3
DEFAULT_MAX_TOKENS = 48
TOOL_CALL = re.compile(r'<tool name="(?P<name>[a-z_]+)">(?P<arg>.*?)</tool>', re.DOTALL)
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
FENCE = re.compile(r"```(?:python)?\n(?P<code>.*?)```", re.DOTALL)
PLANNED = {"arithmetic": "calculator", "unit_conversion": "unit_converter"}


@dataclass(frozen=True)
class AgentSpec:
    """What the runner needs of an agent: its ledger document's fields and its policy's text."""

    name: str
    model: str  # a base name or NAME@N
    tools: list[str]
    policy: str


@dataclass
class RunResult:
    output: dict[str, Any]
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


def system_prompt(agent: AgentSpec) -> str:
    lines = [agent.policy.strip()]
    if agent.tools:
        lines.append('Tools (call one by writing <tool name="NAME">ARGUMENT</tool>):')
        lines += [f"- {t}: {TOOLS[t]}" for t in agent.tools if t in TOOLS]
    return "\n".join(lines)


def user_prompt(task_type: str, task_input: dict[str, Any]) -> str:
    if isinstance(task_input.get("prompt"), str):
        return str(task_input["prompt"])
    return f"Task ({task_type}): {json.dumps(task_input, sort_keys=True)}"


def planned_call(agent: AgentSpec, task_type: str, task_input: dict[str, Any]) -> tuple[str, str] | None:
    """(tool, argument) for a structured task a listed tool answers, else None."""
    tool = PLANNED.get(task_type)
    if tool is None or tool not in agent.tools:
        return None
    if tool == "calculator" and "expression" in task_input:
        return tool, str(task_input["expression"])
    if tool == "unit_converter" and {"value", "from", "to"} <= task_input.keys():
        return tool, f"{task_input['value']} {task_input['from']} to {task_input['to']}"
    return None


class AgentRunner:
    """One base model with the adapters of `catalog` in a serving engine, running agents' tasks."""

    def __init__(self, base: BaseModel, catalog: Catalog, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.base = base
        self.catalog = catalog
        self.stack: Stack = build_stack(base, catalog, max_batch=1)
        self.max_tokens = max_tokens

    def close(self) -> None:
        self.stack.close()

    def adapter_id(self, model: str) -> str | None:
        """The engine's adapter id for the agent's model: None for the base, else the version's hash."""
        if "@" not in model:
            return None
        return self.catalog.resolve(model).adapter_id

    def generate(self, turns: list[dict[str, str]], adapter: str | None) -> tuple[str, int, int]:
        tok = self.base.tokenizer
        text = render(tok, turns, prompt=True)
        if text is None:
            raise LedgerError(errors.BAD_REQUEST, "the base model's chat template failed on the agent's turns")
        ids = list(tok(text, add_special_tokens=False)["input_ids"])
        room = self.stack.engine.context_length - self.max_tokens
        ids = ids[-room:] if room > 0 else ids  # keep the end: the task and the latest tool turn
        stop = frozenset(i for i in (tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")) if isinstance(i, int))
        (gen,) = self.stack.engine.generate([Request(ids, self.max_tokens, adapter, stop_ids=stop,
                                                     stop_strings=("</tool>",))])
        if gen.error is not None:
            raise gen.error
        out = gen.text or ""
        if gen.finish_reason == "stop" and "<tool name=" in out and "</tool>" not in out:
            out += "</tool>"  # the stop string is cut off; put it back so the call parses
        return out, len(ids), len(gen.tokens)

    def run(self, agent: AgentSpec, task_type: str, task_input: dict[str, Any]) -> RunResult:
        adapter = self.adapter_id(agent.model)
        turns = [{"role": "system", "content": system_prompt(agent)},
                 {"role": "user", "content": user_prompt(task_type, task_input)}]
        result = RunResult({})
        answer: str | None = None
        plan = planned_call(agent, task_type, task_input)
        if plan is not None:
            tool, argument = plan
            exact = tools.value(tool, argument)
            shown, answer = tools.show(exact), tools.exact_text(exact)
            result.tool_calls.append({"tool": tool, "argument": argument, "result": shown})
            turns.append({"role": "user", "content": f"Tool {tool} returned: {shown}"})
        text = ""
        for _ in range(MAX_TOOL_ROUNDS + 1):
            text, p, c = self.generate(turns, adapter)
            result.prompt_tokens += p
            result.completion_tokens += c
            call = find_call(text, agent.tools)
            if call is None:
                break
            name, shown = call[0], run_call(*call)
            result.tool_calls.append({"tool": name, "argument": call[1], "result": shown})
            turns += [{"role": "assistant", "content": text},
                      {"role": "user", "content": f"Tool {name} returned: {shown}"}]
        result.output = output_doc(agent, task_type, text, answer, result.tool_calls)
        return result


def find_call(text: str, allowed: list[str]) -> tuple[str, str] | None:
    """The first `<tool name="NAME">ARGUMENT</tool>` in a model's text naming a tool the agent lists."""
    for m in TOOL_CALL.finditer(text):
        if m.group("name") in allowed:
            return m.group("name"), m.group("arg").strip()
    return None


def run_call(name: str, argument: str) -> str:
    """A tool's result as the model reads it; a tool's refusal is shown to the model, not raised."""
    try:
        return tools.call(name, argument)
    except LedgerError as exc:
        return f"error: {exc.detail}"


def output_doc(agent: AgentSpec, task_type: str, text: str, answer: str | None,
               tool_calls: list[dict[str, str]]) -> dict[str, Any]:
    doc: dict[str, Any] = {"agent": agent.name, "model": agent.model, "text": text, "tool_calls": tool_calls}
    if task_type == "code":
        fenced = FENCE.search(text)
        doc["code"] = fenced.group("code") if fenced else text
    if answer is None:
        number = NUMBER.search(text) if task_type in PLANNED else None
        answer = number.group(0).replace(",", "") if number else text.strip()
    doc["answer"] = answer
    return doc
