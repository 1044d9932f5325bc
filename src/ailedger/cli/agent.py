"""`ailedger agent register|update|retire|reinstate|list|show|tools|run`: the agent registry.

Writes check on the current state first (the name, the model, the tools, the operator's stake), so a
transaction that would fail costs no fee; the ledger checks everything again. The policy (the agent's
system prompt) is uploaded as a blob and the ledger keeps its hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

import typer

from ailedger.agents import catalog
from ailedger.agents import payloads as ag
from ailedger.cli import agent_render as render
from ailedger.cli.agent_run import run_cmd
from ailedger.cli.backend import Backend, DataDirOpt, NodeOpt, open_backend
from ailedger.cli.keys import PassphraseFile, key_dir
from ailedger.cli.output import emit, settings
from ailedger.cli.tx import FeeOpt, FromOpt, send_and_show
from ailedger.core import errors
from ailedger.core.amounts import parse_units
from ailedger.core.errors import LedgerError

app = typer.Typer(help="Agents: a model, a policy, tools and a price, staked by an operator and paid by verified "
                       "reliability.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The agent's name (1-64 of a-z 0-9 . -).")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="A registered base model's name, or an adapter version NAME@N (see `ailedger model list`).")]
PolicyOpt = Annotated[Path | None, typer.Option("--policy", help="A text file: the agent's system prompt.",
                                                exists=True, dir_okay=False)]
PolicyTextOpt = Annotated[str | None, typer.Option("--policy-text", help="The system prompt given inline.")]
ToolOpt = Annotated[list[str] | None, typer.Option("--tool", help="A registered tool (repeat for several).")]
TypeOpt = Annotated[list[str] | None, typer.Option("--task-type", help="A task type it takes (repeat for several).")]
PriceOpt = Annotated[str | None, typer.Option("--price", help="Price per task in units (up to 6 decimals).")]


def policy_blob(policy: Path | None, text: str | None) -> bytes | None:
    if policy is not None and text is not None:
        raise LedgerError(errors.BAD_ARGUMENT, "give --policy or --policy-text, not both")
    if policy is not None:
        data = policy.read_bytes()
    elif text is not None:
        data = text.encode()
    else:
        return None
    if not data.strip():
        raise LedgerError(errors.EMPTY_FILE, "the policy is empty")
    return data


def check_model(backend: Backend, model: str) -> None:
    """The same test the ledger makes: a registered base, or a live adapter version NAME@N."""
    try:
        doc = backend.ledger_model(model) if "@" in model else backend.ledger_base(model)
    except LedgerError as exc:
        raise LedgerError(errors.AGENT_MODEL_UNAVAILABLE, f"{model!r}: {exc.code.name}") from exc
    if "@" in model and (doc.get("retired") or not model.partition("@")[2].isdigit()):
        raise LedgerError(errors.AGENT_MODEL_UNAVAILABLE, f"{model!r} is retired or not pinned as NAME@N")


def check_spec(backend: Backend, spec: ag.AgentSpec) -> None:
    if not catalog.name_ok(spec.name):
        raise LedgerError(errors.AGENT_INVALID, f"name {spec.name!r}")
    if not spec.task_types or not all(catalog.task_type_ok(t) for t in spec.task_types):
        raise LedgerError(errors.AGENT_INVALID, f"task types {spec.task_types!r}")
    for tool in spec.tools:
        if tool not in catalog.TOOLS:
            raise LedgerError(errors.AGENT_UNKNOWN_TOOL, repr(tool))
    check_model(backend, spec.model)


def check_stake(backend: Backend, operator: str, extra: int) -> None:
    """The operator's bonded stake covers agents_min_stake for its active agents plus `extra` more."""
    active = sum(1 for a in backend.agents(status="active")["agents"] if a["operator"] == operator)
    need = int(backend.params()["agents_min_stake"]["value"]) * (active + extra)
    have = int(backend.account(operator)["stake"])
    if have < need:
        raise LedgerError(errors.AGENT_STAKE_TOO_LOW, f"bonded {have} < {need} for {active + extra} active agent(s)")


def _find(backend: Backend, name: str) -> dict[str, Any] | None:
    try:
        return backend.agent(name)
    except LedgerError as exc:
        if exc.code is errors.AGENT_NOT_FOUND:
            return None
        raise


@app.command("register")
def register(ctx: typer.Context, name: NameArg, sender: FromOpt, model: ModelOpt = None, policy: PolicyOpt = None,
             policy_text: PolicyTextOpt = None, tools: ToolOpt = None, task_types: TypeOpt = None,
             price: PriceOpt = None, fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
             passphrase_file: PassphraseFile = None) -> None:
    """Register an agent you operate; keep agents_min_stake bonded for each active agent."""
    s = settings(ctx)
    blob = policy_blob(policy, policy_text)
    if model is None or blob is None or not task_types or price is None:
        raise LedgerError(errors.BAD_ARGUMENT, "register needs --model, --policy or --policy-text, --task-type and "
                                               "--price")
    spec = ag.AgentSpec(name, model, hashlib.sha256(blob).digest(), list(tools or []), list(task_types),
                        parse_units(price))
    operator = key_dir(s).info(sender).address

    def before(backend: Backend) -> None:
        check_spec(backend, spec)
        if _find(backend, name) is not None:
            raise LedgerError(errors.AGENT_EXISTS, repr(name))
        check_stake(backend, operator, 1)
        backend.put_blobs([blob])

    send_and_show(ctx, sender, ag.REGISTER, ag.AGENT_SPEC_CODEC.encode(spec), fee, node, data_dir, passphrase_file,
                  lambda b: b.agent(name), render.render_agent, before)


@app.command("update")
def update(ctx: typer.Context, name: NameArg, sender: FromOpt, model: ModelOpt = None, policy: PolicyOpt = None,
           policy_text: PolicyTextOpt = None, tools: ToolOpt = None, task_types: TypeOpt = None,
           price: PriceOpt = None, fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
           passphrase_file: PassphraseFile = None) -> None:
    """Change an agent's model, policy, tools, task types or price; what you leave out stays."""
    s = settings(ctx)
    blob = policy_blob(policy, policy_text)
    operator = key_dir(s).info(sender).address
    with open_backend(s, node, data_dir) as backend:
        now = backend.agent(name)
    if now["operator"] != operator:
        raise LedgerError(errors.AGENT_NOT_OPERATOR, f"agent {name} is operated by {now['operator']}")
    spec = ag.AgentSpec(name, model or now["model"],
                        hashlib.sha256(blob).digest() if blob else bytes.fromhex(now["policy_hash"]),
                        list(tools) if tools else list(now["tools"]),
                        list(task_types) if task_types else list(now["task_types"]),
                        parse_units(price) if price is not None else int(now["price"]))

    def before(backend: Backend) -> None:
        check_spec(backend, spec)
        if blob:
            backend.put_blobs([blob])

    send_and_show(ctx, sender, ag.UPDATE, ag.AGENT_SPEC_CODEC.encode(spec), fee, node, data_dir, passphrase_file,
                  lambda b: b.agent(name), render.render_agent, before)


def _named(ctx: typer.Context, name: str, sender: str, tx_type: int, want: str, code: errors.ErrorCode,
           fee: str | None, node: str | None, data_dir: Path | None, passphrase_file: Path | None) -> None:
    operator = key_dir(settings(ctx)).info(sender).address

    def before(backend: Backend) -> None:
        a = backend.agent(name)
        if a["operator"] != operator:
            raise LedgerError(errors.AGENT_NOT_OPERATOR, f"agent {name} is operated by {a['operator']}")
        if a["status"] not in want.split("|"):
            raise LedgerError(code, f"agent {name} is {a['status']}")
        if tx_type == ag.REINSTATE:
            if int(a["suspended_until"] or 0) > int(backend.status()["height"]) + 1:
                raise LedgerError(code, f"suspended until height {a['suspended_until']}")
            check_stake(backend, operator, 1)

    send_and_show(ctx, sender, tx_type, ag.NAMED_CODEC.encode(ag.Named(name)), fee, node, data_dir, passphrase_file,
                  lambda b: b.agent(name), render.render_agent, before)


@app.command("retire")
def retire(ctx: typer.Context, name: NameArg, sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None,
           data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Retire an agent for good: it takes no new tasks; tasks it took run to their end."""
    _named(ctx, name, sender, ag.RETIRE, "active|suspended", errors.AGENT_RETIRED, fee, node, data_dir,
           passphrase_file)


@app.command("reinstate")
def reinstate(ctx: typer.Context, name: NameArg, sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None,
              data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Bring a suspended agent back once its suspension ends (stake restored; its score is kept)."""
    _named(ctx, name, sender, ag.REINSTATE, "suspended", errors.AGENT_NOT_SUSPENDED, fee, node, data_dir,
           passphrase_file)


@app.command("list")
def list_cmd(ctx: typer.Context,
             task_type: Annotated[str | None, typer.Option(
                 "--task-type", help="Only agents offering this type, in routing order.")] = None,
             status: Annotated[str | None, typer.Option("--status", help="active, suspended or retired.")] = None,
             node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Agents with their verified score, pay share, price and earnings."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.agents(task_type, status)
    emit(s, doc, lambda c: render.render_agents(c, doc))


@app.command("show")
def show(ctx: typer.Context, name: NameArg, node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """One agent: model, policy hash, tools, price, status, score, pay and verification rates, earnings."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.agent(name)
    emit(s, doc, lambda c: render.render_agent(c, doc))


@app.command("tools")
def tools_cmd(ctx: typer.Context, node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """The registered tools an agent may list."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.agents_registry()
    emit(s, doc, lambda c: render.render_registry(c, doc, "tools"))


app.command("run")(run_cmd)
