"""`ailedger agent run TASK_ID`: execute the task's agent with the serving engine and submit its result.

Before loading any weights it checks that the task is open, within its window and the sender's to
answer; then it loads the base (checked against the weights hash the ledger names for the agent's
model), the agent's adapter when it has one, its policy and the task's input from the blob store,
runs the agent (`agentrun.runner`), uploads the output document and submits its hash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ailedger.agentrun.checkers import parse_json
from ailedger.cli import agent_render as render
from ailedger.cli.backend import Backend, DataDirOpt, NodeOpt, open_backend
from ailedger.cli.keys import PassphraseFile, key_dir
from ailedger.cli.output import emit, settings
from ailedger.cli.progress import stage_bars
from ailedger.cli.tx import FeeOpt, FromOpt, send_ok, unlock_key
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import canonical_json


def open_task(backend: Backend, tid: int, operator: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task and its agent, refusing what the ledger would refuse (not open, late, not the sender's)."""
    task = backend.task(tid)
    next_height = int(backend.status()["height"]) + 1
    if task["status"] == "expired" or (task["status"] == "open" and next_height > int(task["result_deadline"])):
        raise LedgerError(errors.TASK_RESULT_LATE, f"task {tid} was due by height {task['result_deadline']}")
    if task["status"] != "open":
        raise LedgerError(errors.TASK_NOT_OPEN, f"task {tid} is {task['status']}")
    if task["operator"] != operator:
        raise LedgerError(errors.TASK_NOT_YOURS, f"task {tid} belongs to agent {task['agent']} of {task['operator']}")
    return task, backend.agent(str(task["agent"]))


def base_hash(backend: Backend, model: str) -> str:
    if "@" in model:
        return str(backend.ledger_model(model)["base"]["weights_hash"])
    return str(backend.ledger_base(model)["weights_hash"])


def run_cmd(ctx: typer.Context,
            task_id: Annotated[int, typer.Argument(metavar="TASK_ID", help="The task (see `ailedger task list`).",
                                                   min=1)],
            sender: FromOpt,
            base: Annotated[str, typer.Option(
                "--base", help="The base model's directory (or smollm2); its weights must be the ledger's.")],
            adapters: Annotated[Path | None, typer.Option(
                "--adapters", help="Directory of adapter directories (for agents on an adapter).",
                file_okay=False)] = None,
            max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Tokens per model turn.")] = 48,
            submit: Annotated[bool, typer.Option(
                "--submit/--no-submit", help="Submit the result (default), or only print it.")] = True,
            fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
            passphrase_file: PassphraseFile = None) -> None:
    """Run the agent of an open task (its operator only) on the real serving engine and submit the result."""
    from ailedger.agentrun.runner import AgentRunner, AgentSpec
    from ailedger.factory.basemodel import load_base
    from ailedger.serving.catalog import Catalog
    from ailedger.serving.stack import served_base

    s = settings(ctx)
    operator = key_dir(s).info(sender).address
    key = unlock_key(s, sender, passphrase_file) if submit else None
    with open_backend(s, node, data_dir, write=submit) as backend:
        task, agent = open_task(backend, task_id, operator)
        policy = backend.get_blob(str(agent["policy_hash"])).decode("utf-8", errors="replace")
        task_input = parse_json(backend.get_blob(str(task["input_hash"])), "task input")
        if not isinstance(task_input, dict):
            raise LedgerError(errors.TASK_OUTPUT_INVALID, "the task input is not a JSON object")
        want = base_hash(backend, str(agent["model"]))
        with stage_bars(s, transient=True) as progress:
            loaded = load_base(base, progress=progress)
        if loaded.info.weights_hash != want:
            raise LedgerError(errors.AGENT_MODEL_UNAVAILABLE, f"--base {base} has weights {loaded.info.weights_hash}, "
                                                              f"the agent's model needs {want}")
        served = served_base(loaded)
        catalog = (Catalog.from_ledger(served, backend.ledger_models(include_retired=True), adapters)
                   if "@" in str(agent["model"]) else Catalog(served, []))
        runner = AgentRunner(loaded, catalog, max_tokens)
        try:
            result = runner.run(AgentSpec(str(agent["name"]), str(agent["model"]), list(agent["tools"]), policy),
                                str(task["task_type"]), task_input)
        finally:
            runner.close()
        blob = canonical_json(result.output)
        (digest,) = backend.put_blobs([blob])
        doc: dict[str, Any] = {"task_id": task_id, "output": result.output, "result_hash": digest,
                               "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens}
        if key is not None:
            from ailedger.agents import payloads as ag

            payload = ag.SUBMIT_RESULT_CODEC.encode(ag.SubmitResult(task_id, bytes.fromhex(digest)))
            doc["tx"] = send_ok(backend, key, ag.SUBMIT_RESULT, payload, fee)
            doc["task"] = backend.task(task_id)
    emit(s, doc, lambda c: render.render_run(c, doc))
