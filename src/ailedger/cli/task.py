"""`ailedger task post|show|list|verify|checkers|register-verifier`: tasks for agents, and their verification.

`post` uploads the task's input (and its spec and output schema, when given) as blobs and escrows the
fee; `verify` fetches the task's blobs and output, runs the registered checker (`agentrun.checkers`, the
same code every verifier runs), uploads its report and posts the verdict. Each checks what the ledger
would refuse first, so a doomed transaction costs no fee.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ailedger.agentrun import checkers
from ailedger.agents import catalog
from ailedger.agents import payloads as ag
from ailedger.cli import agent_render as render
from ailedger.cli.agent import check_stake
from ailedger.cli.backend import Backend, DataDirOpt, NodeOpt, open_backend
from ailedger.cli.keys import PassphraseFile, key_dir
from ailedger.cli.output import emit, settings
from ailedger.cli.tx import AmountOpt, FeeOpt, FromOpt, send_and_show, send_ok, unlock_key
from ailedger.core import errors
from ailedger.core.amounts import parse_units
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import canonical_json

app = typer.Typer(help="Tasks for agents: fees in escrow, results within a window, sampled verification.",
                  no_args_is_help=True)

IdArg = Annotated[int, typer.Argument(metavar="ID", help="The task's id (see `ailedger task list`).", min=1)]


def json_blob(path: Path, what: str) -> bytes:
    """The file's JSON in canonical form (so the same document always has the same hash)."""
    try:
        return canonical_json(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(errors.TASK_OUTPUT_INVALID, f"{what} {path}: {exc}") from exc


def _digest(blob: bytes | None) -> bytes:
    return hashlib.sha256(blob).digest() if blob is not None else bytes(32)


def check_post(backend: Backend, p: ag.PostTask, consumer: str) -> None:
    """What the ledger checks of a post, on the current state."""
    if p.checker and p.checker not in catalog.CHECKERS:
        raise LedgerError(errors.TASK_UNKNOWN_CHECKER, repr(p.checker))
    if not catalog.task_type_ok(p.task_type) or (not p.checker and not any(p.schema_hash)):
        raise LedgerError(errors.TASK_BAD_SPEC, "a task type, and a checker or an output schema (or both)")
    limit = int(backend.params()["agents_max_result_blocks"]["value"])
    if not 1 <= p.result_blocks <= limit:
        raise LedgerError(errors.TASK_BAD_SPEC, f"--window must be within 1..{limit}")
    if p.agent:
        a = backend.agent(p.agent)
        if a["status"] == "suspended":
            raise LedgerError(errors.AGENT_SUSPENDED, f"{p.agent} until {a['suspended_until']}")
        if a["status"] != "active":
            raise LedgerError(errors.AGENT_RETIRED, repr(p.agent))
        if a["operator"] == consumer:
            raise LedgerError(errors.TASK_OWN_AGENT, repr(p.agent))
        if p.task_type not in a["task_types"]:
            raise LedgerError(errors.TASK_NO_ROUTE, f"{p.agent} does not take {p.task_type!r}")
        if p.fee < int(a["price"]):
            raise LedgerError(errors.TASK_FEE_BELOW_PRICE, f"amount {p.fee} < price {a['price']}")
        check_stake(backend, str(a["operator"]), 0)
    elif not [a for a in backend.agents(p.task_type, "active")["agents"]
              if int(a["price"]) <= p.fee and a["operator"] != consumer]:
        raise LedgerError(errors.TASK_NO_ROUTE, f"task type {p.task_type!r} at {p.fee}")
    fee = int(backend.params()["min_fee"]["value"])
    balance = int(backend.account(consumer)["balance"])
    if balance < p.fee + fee:
        raise LedgerError(errors.TASK_FEE_UNFUNDED, f"balance {balance} < amount {p.fee} + fee {fee}")


def _posted(backend: Backend, consumer: str, height: int) -> dict[str, Any]:
    for t in backend.tasks(limit=100)["tasks"]:
        if t["consumer"] == consumer and t["posted"] == height:
            return backend.task(int(t["id"]))
    raise LedgerError(errors.TASK_NOT_FOUND, f"no task by {consumer} at height {height}")


@app.command("post")
def post(ctx: typer.Context, sender: FromOpt, amount: AmountOpt,
         task_type: Annotated[str, typer.Option("--type", help="The task type, e.g. arithmetic.")],
         input_file: Annotated[Path, typer.Option("--input", exists=True, dir_okay=False,
                                                  help="The task's input, a JSON object (uploaded as a blob).")],
         agent: Annotated[str, typer.Option("--agent", help="The agent; left out, the ledger routes the task "
                                                            "(best verified score, then price).")] = "",
         window: Annotated[int, typer.Option("--window", help="Blocks the agent has for its result.")] = 20,
         checker: Annotated[str, typer.Option("--checker", help="A registered checker (`task checkers`).")] = "",
         schema: Annotated[Path | None, typer.Option("--schema", exists=True, dir_okay=False,
                                                     help="A JSON schema the output must satisfy.")] = None,
         spec: Annotated[Path | None, typer.Option("--spec", exists=True, dir_okay=False,
                                                   help="The checker's arguments, a JSON object.")] = None,
         fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
         passphrase_file: PassphraseFile = None) -> None:
    """Post a task with AMOUNT in escrow (at least the agent's price) and how its output is verified."""
    s = settings(ctx)
    consumer = key_dir(s).info(sender).address
    input_blob = json_blob(input_file, "--input")
    schema_blob = json_blob(schema, "--schema") if schema else None
    spec_blob = json_blob(spec, "--spec") if spec else None
    blobs = [b for b in (input_blob, schema_blob, spec_blob) if b is not None]
    payload = ag.PostTask(agent, task_type, _digest(input_blob), parse_units(amount), window, checker,
                          _digest(schema_blob), _digest(spec_blob))
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        check_post(backend, payload, consumer)
        backend.put_blobs(blobs)
        result = send_ok(backend, key, ag.POST_TASK, ag.POST_TASK_CODEC.encode(payload), fee)
        doc = _posted(backend, consumer, int(result["height"]))
    emit(s, {**doc, "tx": result}, lambda c: render.render_task(c, doc))


@app.command("show")
def show(ctx: typer.Context, tid: IdArg, node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """One task: escrow, deadlines, result, whether it was drawn for verification, verdict, what it paid."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.task(tid)
    emit(s, doc, lambda c: render.render_task(c, doc))


@app.command("list")
def list_cmd(ctx: typer.Context,
             status: Annotated[str | None, typer.Option(
                 "--status", help="open, submitted, paid, failed or expired.")] = None,
             agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's tasks.")] = None,
             limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
             node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Tasks, newest first."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.tasks(status, agent, 0, limit)
    emit(s, doc, lambda c: render.render_tasks(c, doc))


@app.command("checkers")
def checkers_cmd(ctx: typer.Context, node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """The registered checkers a task may name."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.agents_registry()
    emit(s, doc, lambda c: render.render_registry(c, doc, "checkers"))


@app.command("register-verifier")
def register_verifier(ctx: typer.Context, sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None,
                      data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Register as a verifier (keep agents_verifier_min_stake bonded to post verdicts)."""
    address = key_dir(settings(ctx)).info(sender).address

    def before(backend: Backend) -> None:
        if backend.agents_registry(address).get("verifier"):
            raise LedgerError(errors.VERIFIER_EXISTS, address)
        _stake(backend, address)

    send_and_show(ctx, sender, ag.REGISTER_VERIFIER, ag.REGISTER_VERIFIER_CODEC.encode(ag.RegisterVerifier()), fee,
                  node, data_dir, passphrase_file, lambda b: b.agents_registry(address),
                  lambda c, d: c.print(f"{address} is a verifier: {d.get('verifier')}"), before)


def _stake(backend: Backend, address: str) -> None:
    need = int(backend.params()["agents_verifier_min_stake"]["value"])
    have = int(backend.account(address)["stake"])
    if have < need:
        raise LedgerError(errors.VERIFIER_STAKE_TOO_LOW, f"bonded {have} < {need}")


def _blob_json(backend: Backend, digest: str | None, what: str) -> Any:
    return None if digest is None else checkers.parse_json(backend.get_blob(digest), what)


def judge(backend: Backend, task: dict[str, Any], verdict: bool | None) -> checkers.Outcome:
    """Run the task's checks on its output; a review task takes the verifier's own `verdict`."""
    try:
        output = _blob_json(backend, task["result_hash"], "output")
    except LedgerError as exc:
        if exc.code is not errors.TASK_OUTPUT_INVALID:
            raise
        return checkers.Outcome(False, "the output is not JSON")
    if task["checker"] == catalog.REVIEW and not task["schema_hash"]:
        if verdict is None:
            raise LedgerError(errors.TASK_VERDICT_NEEDED, f"task {task['id']}")
        return checkers.Outcome(verdict, "reviewed by the verifier")
    try:
        return checkers.check(str(task["checker"] or ""), _blob_json(backend, task["input_hash"], "task input"),
                              output, _blob_json(backend, task["spec_hash"], "spec"),
                              _blob_json(backend, task["schema_hash"], "output schema"))
    except LedgerError as exc:
        if exc.code is errors.TASK_VERDICT_NEEDED and verdict is not None:
            return checkers.Outcome(verdict, "schema ok; reviewed by the verifier")
        raise


@app.command("verify")
def verify(ctx: typer.Context, tid: IdArg, sender: FromOpt,
           verdict: Annotated[bool | None, typer.Option(
               "--pass/--fail", help="Your own judgement, for tasks whose checker is review.")] = None,
           post: Annotated[bool, typer.Option("--post/--no-post", help="Post the verdict (default) or only print "
                                                                       "it.")] = True,
           fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
           passphrase_file: PassphraseFile = None) -> None:
    """Run a drawn task's checker on its output and post the verdict (a registered verifier)."""
    s = settings(ctx)
    address = key_dir(s).info(sender).address
    key = unlock_key(s, sender, passphrase_file) if post else None
    with open_backend(s, node, data_dir, write=post) as backend:
        task = backend.task(tid)
        if post:
            if not backend.agents_registry(address).get("verifier"):
                raise LedgerError(errors.VERIFIER_NOT_REGISTERED, address)
            _stake(backend, address)
            if address in (task["consumer"], task["operator"]):
                raise LedgerError(errors.VERIFIER_CONFLICT, f"task {tid}")
            if task["sampled"] and task["verdict"] is None and task["status"] != "submitted":
                raise LedgerError(errors.TASK_VERIFY_CLOSED, f"task {tid} closed at {task['closed']}")
            if task["status"] == "submitted" and task["draw"] == "pending":
                raise LedgerError(errors.TASK_NOT_SAMPLED, f"task {tid} is drawn at the end of block "
                                                           f"{task['draw_height']}; verify after it")
            if task["status"] != "submitted" or not task["sampled"]:
                raise LedgerError(errors.TASK_NOT_SAMPLED, f"task {tid} is {task['status']}, draw "
                                                           f"{task['draw'] or 'not yet (no result)'}")
        elif task["result_hash"] is None:
            raise LedgerError(errors.TASK_NOT_SAMPLED, f"task {tid} has no result yet")
        outcome = judge(backend, task, verdict)
        report = canonical_json({"task": tid, "checker": task["checker"], **outcome.to_json()})
        doc: dict[str, Any] = {"task_id": tid, "check": outcome.to_json()}
        if key is not None:
            (digest,) = backend.put_blobs([report])
            payload = ag.VERDICT_CODEC.encode(ag.Verdict(tid, int(outcome.passed), bytes.fromhex(digest)))
            doc["tx"] = send_ok(backend, key, ag.VERDICT, payload, fee)
            doc["report_hash"] = digest
        doc["task"] = backend.task(tid)
    emit(s, doc, lambda c: render.render_verdict(c, doc))
