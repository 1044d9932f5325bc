"""`ailedger billing`: prepaid balances, API keys for serving providers, and the receipts they submit.

`key create` makes the API key here, sends only its hash (authorize_key), and prints the key once:
ailedger stores it nowhere. Wherever a key is named (`key show`, `key revoke`, `receipts --key`)
either the key itself or its hash (64 hex) will do; only the hash goes to the node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ailedger.billing import payloads as p
from ailedger.billing.keys import api_key_hash, key_hash_of, new_api_key
from ailedger.billing.service import parse_receipt_id
from ailedger.cli import billing_render as render
from ailedger.cli.backend import Backend, DataDirOpt, NodeOpt, open_backend
from ailedger.cli.keys import PassphraseFile, key_dir, read_text
from ailedger.cli.output import emit, settings
from ailedger.cli.tx import FeeOpt, FromOpt, send_and_show, send_ok, unlock_key
from ailedger.core import errors
from ailedger.core.address import decode_address
from ailedger.core.amounts import parse_units
from ailedger.core.errors import LedgerError

app = typer.Typer(help="Payable inference: prepaid balances, API keys bound to your account, receipts.",
                  no_args_is_help=True)
key_app = typer.Typer(help="API keys: each bound to your account for one serving provider, with a spending cap.",
                      no_args_is_help=True)
app.add_typer(key_app, name="key")

AmountArg = Annotated[str, typer.Argument(metavar="AMOUNT", help="Amount in units, up to 6 decimals (e.g. 2.5).")]
KeyArg = Annotated[str, typer.Argument(metavar="KEY_OR_HASH", help="The API key (alk_…) or its hash (64 hex).")]


def _sender_address(ctx: typer.Context, sender: str) -> str:
    return key_dir(settings(ctx)).info(sender).address  # key_not_found before any passphrase is asked


def _amount(text: str) -> int:
    micro = parse_units(text)
    if micro == 0:
        raise LedgerError(errors.ZERO_AMOUNT, f"{text!r}")
    return micro


# -- prepaid balance -----------------------------------------------------------------------------------

@app.command("deposit")
def deposit(ctx: typer.Context, amount: AmountArg, sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None,
            data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Move AMOUNT from your balance into your prepaid balance (what receipts charge)."""
    payload = p.AMOUNT_CODEC.encode(p.Amount(_amount(amount)))
    address = _sender_address(ctx, sender)
    send_and_show(ctx, sender, p.DEPOSIT, payload, fee, node, data_dir, passphrase_file,
                  lambda b: b.billing_account(address), render.render_account)


@app.command("withdraw")
def withdraw(ctx: typer.Context, amount: AmountArg, sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None,
             data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Start withdrawing AMOUNT of prepaid funds; they return to your balance after
    `billing_withdraw_delay_blocks` (receipts may still charge them until then)."""
    micro = _amount(amount)
    payload = p.AMOUNT_CODEC.encode(p.Amount(micro))
    address = _sender_address(ctx, sender)

    def enough(backend: Backend) -> None:  # refused here, before a fee is spent on a transaction that fails
        prepaid = int(backend.billing_account(address)["prepaid"])
        if prepaid < micro:
            raise LedgerError(errors.INSUFFICIENT_PREPAID, f"prepaid {prepaid} < {micro}")

    send_and_show(ctx, sender, p.WITHDRAW, payload, fee, node, data_dir, passphrase_file,
                  lambda b: b.billing_account(address), render.render_account, enough)


@app.command("show")
def show(ctx: typer.Context,
         who: Annotated[str | None, typer.Argument(metavar="[ADDRESS_OR_KEYNAME]",
                                                   help="Address or key name (default: --from).")] = None,
         sender: Annotated[str | None, typer.Option("--from", help="Show this key's own account.")] = None,
         node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """An account's prepaid balance, withdrawing bucket and API keys."""
    s = settings(ctx)
    if (who is None) == (sender is None):
        raise LedgerError(errors.BAD_ARGUMENT, "give an address or key name, or --from KEYNAME (one of them)")
    address = key_dir(s).resolve(who) if who is not None else key_dir(s).info(str(sender)).address
    with open_backend(s, node, data_dir) as backend:
        doc = backend.billing_account(address)
    emit(s, doc, lambda c: render.render_account(c, doc))


@app.command("escrow")
def escrow(ctx: typer.Context, node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Fees charged by receipts and not yet settled, and how many receipts there are."""
    s = settings(ctx)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.billing_escrow()
    emit(s, doc, lambda c: render.render_escrow(c, doc))


# -- API keys --------------------------------------------------------------------------------------------

@key_app.command("create")
def key_create(ctx: typer.Context, sender: FromOpt,
               provider: Annotated[str, typer.Option(
                   "--provider", help="Address (or key name) of the serving provider that may charge the key.")],
               allowance: Annotated[str, typer.Option("--allowance", help="Most the key may ever spend, in units.")],
               expires: Annotated[int, typer.Option(
                   "--expires", help="Last block height at which the key is charged (0 = never).", min=0)] = 0,
               fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
               passphrase_file: PassphraseFile = None) -> None:
    """Make an API key, authorize its hash on the ledger, and print the key once (it is stored nowhere)."""
    s = settings(ctx)
    provider_raw = decode_address(key_dir(s).resolve(provider))
    cap = parse_units(allowance)
    api_key = new_api_key()
    key_hash = api_key_hash(api_key)
    payload = p.AUTHORIZE_KEY_CODEC.encode(p.AuthorizeKey(key_hash, provider_raw, cap, expires))
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        result = send_ok(backend, key, p.AUTHORIZE_KEY, payload, fee)
        doc = backend.billing_key(key_hash.hex())
    out = {"api_key": api_key, **doc, "tx": result,
           "note": "the API key is shown only this once and stored nowhere; the ledger holds its hash"}
    emit(s, out, lambda c: render.render_new_key(c, out))


@key_app.command("revoke")
def key_revoke(ctx: typer.Context, ref: KeyArg, sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None,
               data_dir: DataDirOpt = None, passphrase_file: PassphraseFile = None) -> None:
    """Revoke an API key of yours: receipts for it are no longer charged from this block on."""
    key_hash = key_hash_of(ref)
    payload = p.KEY_REF_CODEC.encode(p.KeyRef(key_hash))
    address = _sender_address(ctx, sender)

    def revocable(backend: Backend) -> None:  # the handler's own checks, before a fee is spent
        doc = backend.billing_key(key_hash.hex())
        if doc["account"] != address:
            raise LedgerError(errors.NOT_KEY_OWNER, f"the key belongs to {doc['account']}")
        if doc["revoked"]:
            raise LedgerError(errors.API_KEY_REVOKED, f"at height {doc['revoked_height']}")

    send_and_show(ctx, sender, p.REVOKE_KEY, payload, fee, node, data_dir, passphrase_file,
                  lambda b: b.billing_key(key_hash.hex()), render.render_key, revocable)


@key_app.command("show")
def key_show(ctx: typer.Context, ref: KeyArg, node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """One API key: its account, provider, allowance, what it spent, and the account's funds."""
    s = settings(ctx)
    key_hash = key_hash_of(ref)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.billing_key(key_hash.hex())
    emit(s, doc, lambda c: render.render_key(c, doc))


# -- receipts --------------------------------------------------------------------------------------------

@app.command("receipt")
def receipt(ctx: typer.Context, rid: Annotated[str, typer.Argument(metavar="ID", help="Receipt id (64 hex).")],
            node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """One receipt: the call (model, hashes, tokens, citations), its fee, what was charged, and its status."""
    s = settings(ctx)
    parse_receipt_id(rid)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.billing_receipt(rid)
    emit(s, doc, lambda c: render.render_receipt(c, doc))


@app.command("receipts")
def receipts(ctx: typer.Context,
             ref: Annotated[str | None, typer.Option("--key", help="Only this API key's (the key or its hash).")]
             = None,
             limit: Annotated[int, typer.Option("--limit", help="At most this many.", min=1, max=1000)] = 100,
             offset: Annotated[int, typer.Option("--offset", help="Skip this many.", min=0)] = 0,
             node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Receipts oldest first: of one key, or every receipt on the ledger."""
    s = settings(ctx)
    key_hash = key_hash_of(ref).hex() if ref is not None else None
    with open_backend(s, node, data_dir) as backend:
        doc = backend.billing_receipts(key_hash, offset, limit)
    emit(s, doc, lambda c: render.render_receipts(c, doc))


def _hex32(value: Any, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) and len(value) == 64 else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise LedgerError(errors.BAD_RECEIPT_FILE, f"{what} must be 64 hex digits")
    return raw


def _count(entry: dict[str, Any], name: str, where: str) -> int:
    value = entry.get(name, 0)
    if type(value) is not int or not 0 <= value < 2**32:
        raise LedgerError(errors.BAD_RECEIPT_FILE, f"{where}: {name} must be an integer in 0..2^32-1")
    return value


def _shares(entry: dict[str, Any], where: str) -> list[p.ReceiptShare]:
    """`shares`: [{"record": HEX, "bp": N}, …] as `billing receipt --json` prints them."""
    raw = entry.get("shares", [])
    if not isinstance(raw, list):
        raise LedgerError(errors.BAD_RECEIPT_FILE, f"{where}: shares must be a list of {{record, bp}}")
    out = []
    for j, share in enumerate(raw):
        bp = share.get("bp") if isinstance(share, dict) else None
        record = share.get("record") if isinstance(share, dict) else None
        if type(bp) is not int or not 0 <= bp <= p.FULL_BP or not isinstance(record, str):
            raise LedgerError(errors.BAD_RECEIPT_FILE, f"{where}: share {j} must be {{record: 64 hex, "
                                                       f"bp: 0..{p.FULL_BP}}}")
        try:
            raw_hash = bytes.fromhex(record)
        except ValueError:
            raw_hash = b""
        if len(raw_hash) != 32:
            raise LedgerError(errors.BAD_RECEIPT_FILE, f"{where}: share {j}: record is not a 32-byte hash (64 "
                                                       "hex)")
        out.append(p.ReceiptShare(raw_hash, bp))
    return out


def read_receipts(path: Path) -> list[p.Receipt]:
    """A JSON list of receipts (or {"receipts": [...]}), in the shape `billing receipt --json` prints."""
    try:
        doc = json.loads(read_text(path))
    except ValueError as exc:
        raise LedgerError(errors.BAD_RECEIPT_FILE, f"{path}: not JSON ({exc})") from None
    items = doc.get("receipts") if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not items:
        raise LedgerError(errors.BAD_RECEIPT_FILE, f"{path}: no list of receipts")
    out = []
    for i, e in enumerate(items):
        where = f"{path} receipt {i}"
        if not isinstance(e, dict) or not isinstance(e.get("model"), str):
            raise LedgerError(errors.BAD_RECEIPT_FILE, f"{where}: an object with a model name")
        key_hash = api_key_hash(e["key"]) if isinstance(e.get("key"), str) else _hex32(e.get("key_hash"),
                                                                                         f"{where}: key_hash")
        cites = e.get("citations", [])
        if not isinstance(cites, list):
            raise LedgerError(errors.BAD_RECEIPT_FILE, f"{where}: citations must be a list")
        adapter, digest = e.get("adapter_hash"), e.get("attribution")
        out.append(p.Receipt(_hex32(e.get("id"), f"{where}: id"), key_hash, e["model"], _count(e, "version", where),
                             _hex32(e.get("base_hash"), f"{where}: base_hash"),
                             bytes(32) if adapter is None else _hex32(adapter, f"{where}: adapter_hash"),
                             _count(e, "prompt_tokens", where), _count(e, "completion_tokens", where),
                             [_hex32(c, f"{where}: citation {j}") for j, c in enumerate(cites)],
                             p.NO_ATTRIBUTION if digest is None else _hex32(digest, f"{where}: attribution"),
                             _shares(e, where)))
    return out


@app.command("submit-receipts")
def submit_receipts(ctx: typer.Context,
                    path: Annotated[Path, typer.Argument(metavar="FILE", help="JSON list of receipts.",
                                                         dir_okay=False)],
                    sender: FromOpt, fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
                    passphrase_file: PassphraseFile = None) -> None:
    """As a serving provider, submit receipts of served calls (what `ailedger serve` does in batches)."""
    s = settings(ctx)
    batch = read_receipts(path)
    payload = p.SUBMIT_RECEIPTS_CODEC.encode(p.SubmitReceipts(batch))
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        result = send_ok(backend, key, p.SUBMIT_RECEIPTS, payload, fee)
        stored = [backend.billing_receipt(r.id.hex()) for r in batch]
    doc = {"receipts": stored, "tx": result, "offset": 0, "total": len(stored), "next_offset": None}
    emit(s, doc, lambda c: render.render_receipts(c, doc))
