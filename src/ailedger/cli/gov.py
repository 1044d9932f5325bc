"""`ailedger gov propose|deposit|vote|show|list|fund|treasury`: on-ledger governance of every parameter.

Each write checks what it can on the current state first (the parameter exists and the value is within
its bounds, the treasury holds the spend, the proposal is in the right period), so a transaction that
would fail costs no fee; the ledger checks everything again, and the receipt's code is printed if it
still fails (say, another block moved the proposal on meanwhile).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ailedger.cli import gov_render as render
from ailedger.cli.backend import Backend, DataDirOpt, NodeOpt, open_backend
from ailedger.cli.keys import PassphraseFile, key_dir
from ailedger.cli.output import emit, settings
from ailedger.cli.tx import FeeOpt, FromOpt, send_ok, unlock_key
from ailedger.core import errors
from ailedger.core.address import decode_address, encode_address
from ailedger.core.amounts import parse_units
from ailedger.core.errors import LedgerError
from ailedger.governance import payloads as g
from ailedger.governance import txs

app = typer.Typer(help="Governance: proposals with a deposit, votes weighted by bonded stake, a timelock, the "
                       "treasury.", no_args_is_help=True)

IdArg = Annotated[int, typer.Argument(metavar="ID", help="Proposal id (see `ailedger gov list`).", min=1)]
OPTIONS = {name: number for number, name in g.OPTION_NAMES.items()}


def check_changes(backend: Backend, changes: list[g.ParamChange]) -> None:
    """The same bounds (and minimum-below-maximum pairs) the ledger checks, against the node's registry and
    values, before any fee is spent."""
    specs = backend.params()
    for ch in changes:
        spec = specs.get(ch.name)
        if spec is None:
            raise LedgerError(errors.GOV_UNKNOWN_PARAM, repr(ch.name))
        if not spec["minimum"] <= ch.value <= spec["maximum"]:
            raise LedgerError(errors.GOV_PARAM_OUT_OF_BOUNDS,
                              f"{ch.name}={ch.value} outside {spec['minimum']}..{spec['maximum']} {spec['unit']}")
    proposed = {ch.name: ch.value for ch in changes}

    def value(name: str) -> int:
        return proposed.get(name, int(specs[name]["value"]))

    for name, spec in specs.items():
        high = spec.get("at_most")
        if high and (name in proposed or high in proposed) and value(name) > value(high):
            raise LedgerError(errors.GOV_PARAM_ORDER, f"{name}={value(name)} exceeds {high}={value(high)}")


def _created(backend: Backend, proposer: str, height: int) -> dict[str, Any]:
    """The proposal the sender's transaction at `height` created (the newest such one)."""
    for p in backend.gov_proposals(limit=100)["proposals"]:
        if p["proposer"] == proposer and p["submitted"] == height:
            return backend.gov_proposal(int(p["id"]))
    raise LedgerError(errors.GOV_PROPOSAL_NOT_FOUND, f"no proposal by {proposer} at height {height}")


@app.command("propose")
def propose(ctx: typer.Context, sender: FromOpt,
            title: Annotated[str, typer.Option("--title", help="One line saying what the proposal does.")],
            text: Annotated[str, typer.Option("--text", help="Why: the argument for it (up to 8,000 bytes).")] = "",
            changes: Annotated[list[str] | None, typer.Option(
                "--set", metavar="NAME=VALUE",
                help="A parameter change (repeat for several, applied together); values are whole numbers in the "
                     "parameter's unit.")] = None,
            spend_to: Annotated[str | None, typer.Option(
                "--spend-to", metavar="ADDRESS_OR_KEYNAME", help="Treasury spend: who is paid.")] = None,
            spend: Annotated[str | None, typer.Option("--spend", help="Treasury spend: units to pay.")] = None,
            deposit: Annotated[str | None, typer.Option(
                "--deposit", help="Your deposit in units (default gov_min_deposit: voting opens at once).")] = None,
            fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
            passphrase_file: PassphraseFile = None) -> None:
    """Propose parameter changes (--set), a treasury spend (--spend-to and --spend) or, with neither, a text."""
    s = settings(ctx)
    parsed = [g.parse_change(x) for x in changes or []]
    if (spend_to is None) != (spend is None):
        raise LedgerError(errors.BAD_ARGUMENT, "a treasury spend needs both --spend-to and --spend")
    recipient, amount = bytes(20), 0
    if spend_to is not None and spend is not None:
        recipient, amount = decode_address(key_dir(s).resolve(spend_to)), parse_units(spend)
    kind = g.Kind.PARAM_CHANGE if parsed else g.Kind.TREASURY_SPEND if amount or spend_to else g.Kind.TEXT
    address = key_dir(s).info(sender).address
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        check_changes(backend, parsed)
        if kind == g.Kind.TREASURY_SPEND and amount > int(backend.gov_treasury()["treasury"]):
            raise LedgerError(errors.GOV_TREASURY_INSUFFICIENT, f"treasury {backend.gov_treasury()['treasury']}")
        micro = parse_units(deposit) if deposit is not None else int(backend.params()["gov_min_deposit"]["value"])
        payload = g.Propose(kind, title, text, micro, parsed, recipient, amount)
        g.check_shape(payload)
        result = send_ok(backend, key, txs.PROPOSE, g.PROPOSE_CODEC.encode(payload), fee)
        doc = _created(backend, address, int(result["height"]))
    emit(s, {**doc, "tx": result}, lambda c: render.render_proposal(c, doc))


def _send_on(ctx: typer.Context, sender: str, pid: int, tx_type: int, payload: bytes, want: str,
             code: errors.ErrorCode, fee: str | None, node: str | None, data_dir: Path | None,
             passphrase_file: Path | None) -> None:
    """Check the proposal is in the period `want` names, send, then show the proposal with the sender's vote."""
    s = settings(ctx)
    address = key_dir(s).info(sender).address
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        before = backend.gov_proposal(pid)
        if before["status"] != want:
            closed = want == "voting" and before["status"] != "deposit"
            raise LedgerError(errors.GOV_VOTING_CLOSED if closed else code, f"proposal {pid} is {before['status']}")
        result = send_ok(backend, key, tx_type, payload, fee)
        doc = backend.gov_proposal(pid, address)
    emit(s, {**doc, "tx": result}, lambda c: render.render_proposal(c, doc))


@app.command("deposit")
def deposit_cmd(ctx: typer.Context, sender: FromOpt, pid: IdArg,
                amount: Annotated[str, typer.Argument(metavar="AMOUNT", help="Units, up to 6 decimals.")],
                fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
                passphrase_file: PassphraseFile = None) -> None:
    """Add to a proposal's deposit during its deposit period; voting opens once gov_min_deposit is reached."""
    payload = g.DEPOSIT_CODEC.encode(g.Deposit(pid, parse_units(amount)))
    _send_on(ctx, sender, pid, txs.DEPOSIT, payload, "deposit", errors.GOV_NOT_IN_DEPOSIT, fee, node, data_dir,
             passphrase_file)


@app.command("vote")
def vote_cmd(ctx: typer.Context, sender: FromOpt, pid: IdArg,
             option: Annotated[str, typer.Argument(metavar="OPTION", help="yes, no, abstain or veto.")],
             fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
             passphrase_file: PassphraseFile = None) -> None:
    """Vote; your weight is your bonded stake at the block before voting opened. A later vote replaces yours."""
    if option.lower() not in OPTIONS:
        raise LedgerError(errors.GOV_BAD_OPTION, repr(option))
    payload = g.VOTE_CODEC.encode(g.Vote(pid, OPTIONS[option.lower()]))
    _send_on(ctx, sender, pid, txs.VOTE, payload, "voting", errors.GOV_NOT_IN_VOTING, fee, node, data_dir,
             passphrase_file)


@app.command("fund")
def fund(ctx: typer.Context, sender: FromOpt,
         amount: Annotated[str, typer.Argument(metavar="AMOUNT", help="Units, up to 6 decimals.")],
         fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
         passphrase_file: PassphraseFile = None) -> None:
    """Give part of your balance to the governance treasury (spent only by passed treasury-spend proposals)."""
    s = settings(ctx)
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        result = send_ok(backend, key, txs.FUND, g.FUND_CODEC.encode(g.Fund(parse_units(amount))), fee)
        doc = backend.gov_treasury()
    emit(s, {**doc, "tx": result}, lambda c: render.render_treasury(c, doc))


@app.command("show")
def show(ctx: typer.Context, pid: IdArg,
         voter: Annotated[str | None, typer.Option(
             "--voter", metavar="ADDRESS_OR_KEYNAME", help="Also show this address's vote.")] = None,
         node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """One proposal: its text, changes or spend, tally, deposits and what happens to them."""
    s = settings(ctx)
    who = encode_address(decode_address(key_dir(s).resolve(voter))) if voter else None
    with open_backend(s, node, data_dir) as backend:
        doc = backend.gov_proposal(pid, who)
    emit(s, doc, lambda c: render.render_proposal(c, doc))


@app.command("list")
def list_cmd(ctx: typer.Context,
             status: Annotated[str | None, typer.Option(
                 "--status", help="deposit, voting, passed, executed, failed_execution, rejected, no_quorum, "
                                  "vetoed or dropped.")] = None,
             offset: Annotated[int, typer.Option("--offset", help="Skip this many (newest first).")] = 0,
             limit: Annotated[int, typer.Option("--limit", help="Most proposals shown, 1..1000.")] = 100,
             node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Proposals, newest first, with their status and tally."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.gov_proposals(status, offset, limit)
    emit(s, doc, lambda c: render.render_list(c, doc))


@app.command("treasury")
def treasury(ctx: typer.Context, node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """What the governance treasury holds, and the deposits held on open proposals."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.gov_treasury()
    emit(s, doc, lambda c: render.render_treasury(c, doc))
