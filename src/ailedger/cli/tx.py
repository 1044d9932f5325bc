"""`ailedger tx`: sign with a keystore key, submit, wait for inclusion, print the receipt.

The nonce is the account's `pending_nonce` (so several transactions can be queued before a block)
and the fee defaults to the chain's `min_fee` parameter, both read from the same backend the
transaction is sent to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ailedger.chain.accounts import AMOUNT_CODEC, STAKE, TRANSFER, TRANSFER_CODEC, UNSTAKE, Amount, Transfer
from ailedger.chain.proofs import verify_receipt_proof
from ailedger.chain.tx import sign_tx
from ailedger.cli.backend import Backend, DataDirOpt, NodeOpt, open_backend
from ailedger.cli.keys import PassphraseFile, get_passphrase, key_dir
from ailedger.cli.output import Explained, Settings, emit, kv_table, marked, settings, units
from ailedger.core import errors
from ailedger.core.address import decode_address
from ailedger.core.amounts import parse_units
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair

FromOpt = Annotated[str, typer.Option("--from", help="Name of the signing key in HOME/keys.")]
AmountOpt = Annotated[str, typer.Option("--amount", help="Amount in units, up to 6 decimals (e.g. 12.5).")]
FeeOpt = Annotated[str | None, typer.Option("--fee", help="Fee in units; default the chain's min_fee.")]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until the transaction is in a block.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for inclusion.")]


def send(backend: Backend, key: KeyPair, tx_type: int, payload: bytes, fee: int | None = None,
         wait: bool = True, timeout_s: float = 30.0) -> dict[str, Any]:
    """Sign with the account's next nonce, submit, and (by default) wait for the receipt."""
    chain_id = backend.status()["chain_id"]
    nonce = backend.account(key.address_text)["pending_nonce"]
    if fee is None:
        fee = int(backend.params()["min_fee"]["value"])
    raw = sign_tx(key, chain_id, nonce, fee, tx_type, payload)
    submitted = backend.submit(raw)
    if not wait:
        return submitted
    return backend.wait_for_tx(submitted["tx_id"], timeout_s)


def receipt_failure(result: dict[str, Any]) -> Explained | None:
    """The error a failed receipt names, or None when the transaction succeeded (or is pending)."""
    receipt = result.get("receipt")
    if not receipt or receipt.get("ok", True):
        return None
    code = errors.by_number(int(receipt.get("code", 0))) or errors.TX_FAILED
    return Explained(code, f"transaction {result.get('id', '?')} was included at height {result.get('height')} "
                           f"and charged its fee {receipt.get('fee')}, but failed", {"tx": result})


def render_tx(c: Console, t: dict[str, Any]) -> None:
    receipt = t.get("receipt") or {}
    rows: list[tuple[str, Any]] = [("id", t.get("id") or t.get("tx_id")), ("status", t.get("status"))]
    if "type_name" in t:
        rows += [("type", t["type_name"]), ("sender", t["sender"]), ("nonce", t["nonce"]), ("fee", units(t["fee"])),
                 ("payload", payload_text(t.get("payload")))]
    if "height" in t:
        rows += [("block", f"{t['height']} (position {t['position']})")]
    if receipt:
        outcome = "ok" if receipt["ok"] else f"failed: {receipt['error']} — {receipt['message']}"
        rows.append(("receipt", marked(receipt["ok"], outcome)))
    if "receipt_proof_verified" in t:
        rows.append(("receipt proof", marked(True, f"verified against block {t['height']}'s receipts root "
                                                   f"{t['receipt_proof']['receipts_root']}")))
    c.print(kv_table("transaction", rows))


def payload_text(payload: Any) -> str:
    if isinstance(payload, dict):
        return ", ".join(f"{k}={units(v) if k == 'amount' else v}" for k, v in payload.items())
    return str(payload)


app = typer.Typer(help="Sign and send transactions, or look one up.", no_args_is_help=True)


def _run(ctx: typer.Context, sender: str, tx_type: int, payload: bytes, fee: str | None, node: str | None,
         data_dir: Any, passphrase_file: Any, wait: bool, timeout: float) -> None:
    s = settings(ctx)
    keys = key_dir(s)
    keys.info(sender)  # a missing or damaged key fails before the passphrase is asked for
    key = keys.unlock(sender, get_passphrase(passphrase_file))
    fee_micro = parse_units(fee) if fee is not None else None
    with open_backend(s, node, data_dir, write=True) as backend:
        result = send(backend, key, tx_type, payload, fee_micro, wait, timeout)
    failure = receipt_failure(result)
    if failure is None or not s.json:
        emit(s, result, lambda c: render_tx(c, result))
    if failure is not None:
        raise failure


@app.command("transfer")
def transfer(ctx: typer.Context, sender: FromOpt, to: Annotated[str, typer.Option(
                 "--to", help="Recipient address, or the name of a key in HOME/keys.")],
             amount: AmountOpt, fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
             passphrase_file: PassphraseFile = None, wait: WaitOpt = True, timeout: TimeoutOpt = 30.0) -> None:
    """Move AMOUNT from a key's account to another account."""
    recipient = decode_address(key_dir(settings(ctx)).resolve(to))
    payload = TRANSFER_CODEC.encode(Transfer(recipient, parse_units(amount)))
    _run(ctx, sender, TRANSFER, payload, fee, node, data_dir, passphrase_file, wait, timeout)


@app.command("stake")
def stake(ctx: typer.Context, sender: FromOpt, amount: AmountOpt, fee: FeeOpt = None, node: NodeOpt = None,
          data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None, wait: WaitOpt = True,
          timeout: TimeoutOpt = 30.0) -> None:
    """Bond AMOUNT of the key's balance as stake."""
    payload = AMOUNT_CODEC.encode(Amount(parse_units(amount)))
    _run(ctx, sender, STAKE, payload, fee, node, data_dir, passphrase_file, wait, timeout)


@app.command("unstake")
def unstake(ctx: typer.Context, sender: FromOpt, amount: AmountOpt, fee: FeeOpt = None, node: NodeOpt = None,
            data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None, wait: WaitOpt = True,
            timeout: TimeoutOpt = 30.0) -> None:
    """Start unbonding AMOUNT of stake; it returns to the balance after `unbonding_blocks`."""
    payload = AMOUNT_CODEC.encode(Amount(parse_units(amount)))
    _run(ctx, sender, UNSTAKE, payload, fee, node, data_dir, passphrase_file, wait, timeout)


def checked_tx(backend: Backend, tx_id: str, proof: bool) -> dict[str, Any]:
    """Look a transaction up; with `proof`, check its receipt against the block header's receipts root."""
    t = backend.tx(tx_id, proof)
    if proof and "receipt_proof" in t:
        header = backend.block(t["height"])["header"]
        receipt = verify_receipt_proof(t["receipt_proof"], bytes.fromhex(header["receipts_root"]))
        if receipt.tx_id.hex() != t["id"]:
            raise LedgerError(errors.BAD_PROOF, "the proven receipt belongs to another transaction")
        t["receipt_proof_verified"] = True
    return t


@app.command("show")
def show(ctx: typer.Context, tx_id: Annotated[str, typer.Argument(help="Transaction id (hex).")],
         proof: Annotated[bool, typer.Option("--proof", help="Fetch and verify the receipt's Merkle proof.")] = False,
         node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Show a transaction, its block and its receipt."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        t = checked_tx(backend, tx_id, proof)
    emit(s, t, lambda c: render_tx(c, t))


def unlock_key(s: Settings, sender: str, passphrase_file: Path | None) -> KeyPair:
    """The sender's key; a missing or damaged key fails before the passphrase is asked for."""
    keys = key_dir(s)
    keys.info(sender)
    return keys.unlock(sender, get_passphrase(passphrase_file))


def send_ok(backend: Backend, key: KeyPair, tx_type: int, payload: bytes, fee: str | None) -> dict[str, Any]:
    """Send and wait; an included transaction whose receipt failed raises its own code."""
    result = send(backend, key, tx_type, payload, parse_units(fee) if fee is not None else None)
    failure = receipt_failure(result)
    if failure is not None:
        raise failure
    return result


def send_and_show(ctx: typer.Context, sender: str, tx_type: int, payload: bytes, fee: str | None,
                  node: str | None, data_dir: Path | None, passphrase_file: Path | None,
                  view: Callable[[Backend], dict[str, Any]], show: Callable[[Console, dict[str, Any]], None],
                  before: Callable[[Backend], None] | None = None) -> None:
    """The shape of every "do one thing, then show the object it changed" command.

    `before` runs on the open backend ahead of the transaction (a check that must fail before
    anything is stored, or a blob the transaction names); the object is read after inclusion.
    """
    s = settings(ctx)
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        if before is not None:
            before(backend)
        result = send_ok(backend, key, tx_type, payload, fee)
        doc = view(backend)
    emit(s, {**doc, "tx": result}, lambda c: show(c, doc))
