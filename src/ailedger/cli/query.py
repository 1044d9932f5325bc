"""Read commands: `account show`, `block show`, `params`, `status`, and offline `proof verify`.

Proofs are always checked here, on the client, against a header's root: a node's word that an
account holds a balance is worth nothing until the Merkle path hashes up to the state root.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ailedger.chain.proofs import verify_account_proof, verify_receipt_proof
from ailedger.cli import gov_render
from ailedger.cli.backend import Backend, DataDirOpt, NodeOpt, open_backend
from ailedger.cli.keys import key_dir, read_text
from ailedger.cli.output import emit, kv_table, marked, ok_mark, settings, short, units
from ailedger.cli.tx import payload_text
from ailedger.core import errors
from ailedger.core.errors import LedgerError

account_app = typer.Typer(help="Inspect accounts.", no_args_is_help=True)
block_app = typer.Typer(help="Inspect blocks.", no_args_is_help=True)
proof_app = typer.Typer(help="Check saved proofs offline.", no_args_is_help=True)


def _root(hex_text: str, what: str) -> bytes:
    try:
        root = bytes.fromhex(hex_text)
    except (ValueError, TypeError):
        raise LedgerError(errors.BAD_HEX, f"{what} {hex_text!r}") from None
    if len(root) != 32:
        raise LedgerError(errors.BAD_HEX, f"{what} must be 32 bytes (64 hex digits)")
    return root


def proven_account(backend: Backend, address: str) -> dict[str, Any]:
    """The account with its proof, verified against the state root of the header it names."""
    acct = backend.account(address, proof=True)
    proof = acct["proof"]
    header = backend.block(proof["height"])["header"]
    proven = verify_account_proof(proof, _root(header["state_root"], "state root"))
    if any(getattr(proven, k) != acct[k] for k in ("balance", "nonce", "stake", "unbonding")):
        raise LedgerError(errors.BAD_PROOF, "the proven account differs from the one reported")
    acct["proof_verified"] = {"height": proof["height"], "state_root": header["state_root"]}
    return acct


def render_account(c: Console, a: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = [("address", a["address"]), ("balance", units(a["balance"])),
                                   ("stake", units(a["stake"])), ("unbonding", units(a["unbonding"])),
                                   ("nonce", a["nonce"]), ("next nonce", a.get("pending_nonce")),
                                   ("at height", a.get("height"))]
    if "proof_verified" in a:
        v = a["proof_verified"]
        rows.append(("proof", marked(True, f"verified locally against block {v['height']}'s state root "
                                           f"{v['state_root']}")))
    c.print(kv_table("account", rows))


@account_app.command("show")
def account_show(ctx: typer.Context,
                 who: Annotated[str, typer.Argument(metavar="ADDRESS_OR_KEYNAME", help="Address or key name.")],
                 proof: Annotated[bool, typer.Option("--proof", help="Fetch a Merkle proof and verify it.")] = False,
                 node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Show an account's balance, stake and nonce (amounts in units)."""
    s = settings(ctx)
    address = key_dir(s).resolve(who)
    with open_backend(s, node, data_dir) as backend:
        acct = proven_account(backend, address) if proof else backend.account(address)
    emit(s, acct, lambda c: render_account(c, acct))


def render_block(c: Console, b: dict[str, Any]) -> None:
    h = b["header"]
    c.print(kv_table(f"block {h['height']}", [
        ("hash", h["hash"]), ("parent", h["parent"]), ("timestamp (ms)", h["timestamp_ms"]),
        ("proposer", h["proposer"]), ("transactions", h["tx_count"]), ("tx root", h["tx_root"]),
        ("receipts root", h["receipts_root"]), ("state root", h["state_root"])]))
    if b["txs"]:
        table = Table(title_justify="left")
        for col in ("#", "id", "type", "sender", "payload", "fee", "receipt"):
            table.add_column(col)
        for t in b["txs"]:
            r = t["receipt"]
            table.add_row(str(t["position"]), short(t["id"]), str(t["type_name"]), short(t["sender"], 14),
                          payload_text(t["payload"]), units(t["fee"]),
                          marked(r["ok"], "ok" if r["ok"] else str(r["error"])))
        c.print(table)


@block_app.command("show")
def block_show(ctx: typer.Context,
               height: Annotated[str, typer.Argument(help="Height, or 'latest'.")] = "latest",
               node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Show a block header and its transactions with their receipts."""
    s = settings(ctx)
    if height != "latest" and not height.isdigit():
        raise LedgerError(errors.BAD_ARGUMENT, f"height {height!r} is neither a number nor 'latest'")
    with open_backend(s, node, data_dir) as backend:
        b = backend.block("latest" if height == "latest" else int(height))
    emit(s, b, lambda c: render_block(c, b))


def params_cmd(ctx: typer.Context,
               name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="One parameter only.")] = None,
               history: Annotated[bool, typer.Option(
                   "--history", help="With NAME: every change governance made to it (height, old, new, proposal).")]
               = False,
               node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Show every ledger parameter in force (value, bounds, unit, meaning, changes), or one with its history."""
    s = settings(ctx)
    if history and name is None:
        raise LedgerError(errors.BAD_ARGUMENT, "--history needs a parameter NAME")
    with open_backend(s, node, data_dir) as backend:
        if name is not None and history:
            doc = backend.param_history(name)
            emit(s, doc, lambda c: gov_render.render_param_history(c, doc))
            return
        p = backend.params()
    if name is not None:
        if name not in p:
            raise LedgerError(errors.BAD_PARAM, f"unknown parameter {name!r}")
        p = {name: p[name]}
    emit(s, p, lambda c: gov_render.render_params(c, p))


def status_cmd(ctx: typer.Context, node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Show the chain id, head block, state root and pending transactions."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        st = backend.status()
    emit(s, st, lambda c: c.print(kv_table("status", [
        ("chain id", st["chain_id"]), ("height", st["height"]), ("head hash", st["head_hash"]),
        ("state root", st["state_root"]), ("pending txs", st["pending"]), ("producing", st["producing"])])))


def _load_proof(path: Path) -> tuple[str, dict[str, Any]]:
    """('account' | 'receipt', proof document) from a file saved from `--json` output or a bare proof."""
    try:
        doc = json.loads(read_text(path))
    except ValueError as exc:
        raise LedgerError(errors.BAD_PROOF, f"{path} is not JSON: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("receipt_proof"), dict):
        return "receipt", doc["receipt_proof"]
    if isinstance(doc, dict) and isinstance(doc.get("proof"), dict) and "state_root" in doc["proof"]:
        return "account", doc["proof"]
    if isinstance(doc, dict) and "state_root" in doc and "account" in doc:
        return "account", doc
    if isinstance(doc, dict) and "receipts_root" in doc and "receipt" in doc:
        return "receipt", doc
    raise LedgerError(errors.BAD_PROOF, f"{path} holds neither an account proof nor a receipt proof")


@proof_app.command("verify")
def proof_verify(ctx: typer.Context,
                 file: Annotated[Path, typer.Argument(help="JSON saved from `account show --proof --json` or "
                                                           "`tx show --proof --json`.", dir_okay=False)],
                 root: Annotated[str | None, typer.Option("--root", help="Trusted state or receipts root (hex) "
                                                          "taken from a header you believe.")] = None) -> None:
    """Verify a saved proof with no database and no node."""
    s = settings(ctx)
    kind, doc = _load_proof(file)
    trusted = _root(root, "--root") if root is not None else None
    if kind == "account":
        acct = verify_account_proof(doc, trusted)
        proven: dict[str, Any] = {"address": doc["address"], **acct.to_json()}
        root_hex = doc["state_root"]
    else:
        receipt = verify_receipt_proof(doc, trusted)
        proven = receipt.to_json()
        root_hex = doc["receipts_root"]
    out = {"ok": True, "kind": kind, "height": doc.get("height"), "root": root_hex, "trusted_root": trusted is not None,
           "proven": proven}
    note = ("against the trusted root you gave" if trusted is not None else
            "against the root inside the file only (self-consistent); pass --root from a header you trust")

    def render(c: Console) -> None:
        c.print(f"{ok_mark(True)} {kind} proof valid {note}")
        c.print(kv_table(f"proven {kind} (height {doc.get('height')}, root {short(root_hex)})",
                         [(k, units(v) if k in ("balance", "stake", "unbonding", "fee") else v)
                          for k, v in proven.items()]))

    emit(s, out, render)
