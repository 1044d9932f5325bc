"""`ailedger reputation show`: an account's Beta reputation in every role, decayed to the head height."""

from __future__ import annotations

from typing import Annotated

import typer

from ailedger.cli.backend import DataDirOpt, NodeOpt, open_backend
from ailedger.cli.datanet_render import render_reputation
from ailedger.cli.keys import key_dir
from ailedger.cli.output import emit, settings

app = typer.Typer(help="Reputation of contributors, validators and other roles (Beta scores on the ledger).",
                  no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context,
         who: Annotated[str, typer.Argument(metavar="ADDRESS_OR_KEY", help="Address or key name.")],
         node: NodeOpt = None, data_dir: DataDirOpt = None) -> None:
    """Score (alpha / (alpha + beta)), alpha and beta per role; 50% means no evidence yet."""
    s = settings(ctx)
    address = key_dir(s).resolve(who)
    with open_backend(s, node, data_dir) as backend:
        doc = backend.reputation(address)
    emit(s, doc, lambda c: render_reputation(c, doc))
