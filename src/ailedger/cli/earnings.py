"""`ailedger earnings ADDR` and `ailedger withdraw`: what settlement paid an address, and taking it out.

`earnings` shows the earnings balance, vesting, totals per Datanet and per model, and one line per
block that paid the address (filter by --datanet, --model, --from-height/--to-height); `--line H`
lists the receipts behind the line of block H, each part recomputed by the settlement rule.
`withdraw` moves earnings to the spendable balance; it checks the balance first, so a withdrawal that
would fail costs no fee.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ailedger.cli import earnings_render as render
from ailedger.cli.backend import DataDirOpt, NodeOpt, open_backend
from ailedger.cli.keys import PassphraseFile, key_dir
from ailedger.cli.output import emit, settings
from ailedger.cli.tx import FeeOpt, FromOpt, send_ok, unlock_key
from ailedger.core import errors
from ailedger.core.amounts import parse_units
from ailedger.core.errors import LedgerError
from ailedger.settlement.txs import WITHDRAW, WITHDRAW_CODEC, Withdraw


def earnings(ctx: typer.Context,
             who: Annotated[str, typer.Argument(metavar="ADDRESS_OR_KEYNAME", help="Whose earnings.")],
             datanet: Annotated[str | None, typer.Option("--datanet", help="Only this Datanet's lines.")] = None,
             model: Annotated[str | None, typer.Option("--model", help="Only this model's lines (NAME or NAME@N).")]
             = None,
             from_height: Annotated[int | None, typer.Option("--from-height", help="First block height.")] = None,
             to_height: Annotated[int | None, typer.Option("--to-height", help="Last block height.")] = None,
             line: Annotated[int | None, typer.Option(
                 "--line", help="Show the line of this block height with the receipts behind it.")] = None,
             limit: Annotated[int, typer.Option("--limit", help="Most lines (or receipts with --line), 1..1000.")]
             = 100,
             node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Earnings of an address: balance, vesting, per Datanet, per model, per block (with the receipts behind each)."""
    s = settings(ctx)
    address = key_dir(s).resolve(who)
    with open_backend(s, node, data_dir) as backend:
        if line is not None:
            doc = backend.settlement_line(address, line, limit)
            emit(s, doc, lambda c: render.render_line(c, doc))
            return
        doc = backend.settlement_earnings(address, datanet, model, from_height, to_height, limit)
    emit(s, doc, lambda c: render.render_earnings(c, doc))


def withdraw(ctx: typer.Context, sender: FromOpt,
             amount: Annotated[str | None, typer.Argument(metavar="[AMOUNT]", help="Units, up to 6 decimals.")]
             = None,
             every: Annotated[bool, typer.Option("--all", help="Withdraw the whole earnings balance.")] = False,
             fee: FeeOpt = None, node: NodeOpt = None, data_dir: DataDirOpt = None,
             passphrase_file: PassphraseFile = None) -> None:
    """Move earnings (AMOUNT, or --all) from your earnings balance to your spendable balance."""
    s = settings(ctx)
    if (amount is None) == (not every):
        raise LedgerError(errors.BAD_ARGUMENT, "give an AMOUNT or --all (one of them)")
    address = key_dir(s).info(sender).address
    key = unlock_key(s, sender, passphrase_file)
    with open_backend(s, node, data_dir, write=True) as backend:
        balance = int(backend.settlement_earnings(address, limit=1)["balance"])
        micro = balance if every else parse_units(str(amount))
        if micro == 0:
            raise LedgerError(errors.NOTHING_TO_WITHDRAW if every else errors.ZERO_AMOUNT, f"earnings {balance}")
        if micro > balance:
            raise LedgerError(errors.INSUFFICIENT_EARNINGS, f"earnings balance {balance} < {micro}")
        result = send_ok(backend, key, WITHDRAW, WITHDRAW_CODEC.encode(Withdraw(micro)), fee)
        after = backend.settlement_earnings(address, limit=1)
    doc = {"address": after["address"], "withdrawn_now": micro, "balance": after["balance"], "held": after["held"],
           "tx": result}
    emit(s, doc, lambda c: render.render_withdrawn(c, doc))
