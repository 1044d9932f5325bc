"""`ailedger explorer`: the explorer's pages (and the node's read API beside them) over a data directory.

The pages are added to the same FastAPI app `node run` serves, so the account page's in-browser proof
check asks this server's own `/v1/accounts/ADDR?proof=true`. With `--node URL` the explorer reads a
running node over its API instead (replaying its blocks into the history index, and passing the proof
check's two questions on to it). The directory is opened without a
proposer key and without the writer lock: the explorer only reads, and may run beside the node that
writes it (new blocks are indexed as they appear; the state shown is the one loaded at start, so
restart it to see a live node's newest state, or run the node itself with `node run --explorer`).

`--base` and `--adapter` are optional: with the base model the answer pages show prompts and answers
as text (not token ids); with both, "re-verify" recomputes an answer's attribution instead of only
checking it against the ledger.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from ailedger.cli.backend import ChainDirOpt, NodeOpt, data_dir_of
from ailedger.cli.output import settings
from ailedger.core import errors
from ailedger.core.errors import LedgerError


def explorer(ctx: typer.Context, data_dir: ChainDirOpt = None, node_url: NodeOpt = None,
             host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
             port: Annotated[int, typer.Option("--port", help="TCP port (0: any free port).")] = 8650,
             base: Annotated[Path | None, typer.Option("--base", help="The base model's directory: prompts and "
                                                       "answers shown as text, and needed to recompute.",
                                                       file_okay=False, exists=True)] = None,
             adapter: Annotated[list[Path] | None, typer.Option("--adapter", help="An adapter directory with its "
                                                                "attribution bundle (repeatable): answers of it "
                                                                "are recomputed on re-verify.",
                                                                file_okay=False, exists=True)] = None) -> None:
    """Serve the explorer: blocks, accounts (with in-browser proofs), Datanets, models, answers."""
    import uvicorn

    from ailedger.api.app import create_app
    from ailedger.api.server import StopSignals, bind, url_of
    from ailedger.chain.node import Node
    from ailedger.modules import default_runtime
    from ailedger.web.app import add_explorer, remote_app
    from ailedger.web.data_pages import Verifier
    from ailedger.web.source import RemoteNode

    s = settings(ctx)
    if node_url and data_dir is not None:
        raise LedgerError(errors.BAD_ARGUMENT, "give either --node or --data-dir, not both")
    verifier = Verifier(base, list(adapter or []))
    node: Node | RemoteNode
    if node_url:
        node = RemoteNode(node_url, default_runtime())
        app = remote_app(node, verifier)
    else:
        node = Node(data_dir_of(s, data_dir), default_runtime())
        app = create_app(node)
    try:
        if isinstance(node, Node):
            add_explorer(app, node, verifier)
        with StopSignals() as stop:
            if stop.requested:
                return
            sock = bind(host, port)
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                    timeout_graceful_shutdown=5, timeout_keep_alive=5)

            class Announcing(uvicorn.Server):
                async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                    await super().startup(sockets)
                    if self.started:
                        print(f"explorer listening on {url_of(sock)}", flush=True)

            Announcing(config).run(sockets=[sock])
    finally:
        node.close()
