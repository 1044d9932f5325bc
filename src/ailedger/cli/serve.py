"""`ailedger serve`: the OpenAI-compatible API over one base model and a directory of adapters.

Adapters are the subdirectories of `--adapters`. Alone, each is served under its directory name as
version 1. With `--node URL` the names, versions and provenance come from the ledger's registry and
a directory serves the published version whose adapter hash its tensors match (name the directory
by the hash, by convention); published versions without local files are listed as not served.
`--node` also turns on retrieval with citations (`rag` in a request) over that node's Datanet
snapshots, and billing: requests need an API key that a ledger account authorized for the
`--provider` key's address, are paid from that account's prepaid balance, and their receipts are
signed by the provider key and sent to the node in batches (`--free` serves without billing). So
the connection to the node stays open while the server runs; receipts still queued are sent on exit.

Adapters whose directory holds an attribution bundle (`attribution/manifest.json`, written by
`ailedger attribution index`) get an attribution record for every answer (`--no-attribution` turns
that off; `--attribution` insists on at least one bundle). Records are kept in an SQLite file
(`--attribution-db`, default HOME/serving/attribution.sqlite) by receipt id; with billing each
receipt carries its record's digest and per-record shares, and the record is posted to the node's
blob store first. The bundles are loaded before the engine's LoRA slots go into the base model,
because the attribution engine takes its own copy of the base to compute gradients on.

"listening on URL" is printed once uvicorn accepts connections, as `ailedger node run` does, so a
script can wait for that line; SIGTERM or Ctrl-C finishes the requests in flight and exits with 0.
Torch, transformers and uvicorn are imported inside the command: `ailedger --help` stays fast.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ailedger.cli.backend import NodeOpt, open_backend
from ailedger.cli.keys import PassphraseFile
from ailedger.cli.output import settings
from ailedger.cli.tx import unlock_key
from ailedger.core import errors
from ailedger.core.errors import LedgerError

if TYPE_CHECKING:
    import uvicorn

    from ailedger.factory.basemodel import BaseModel
    from ailedger.serving.attribution_worker import AttributionWorker
    from ailedger.serving.catalog import Catalog


def serve(ctx: typer.Context,
          base: Annotated[str, typer.Option("--base", help="`smollm2` (shipped) or a local Hugging Face "
                                                           "causal-LM directory.")] = "smollm2",
          adapters: Annotated[Path | None, typer.Option("--adapters", help="Directory whose subdirectories are "
                                                        "adapters.", file_okay=False, exists=True)] = None,
          node: NodeOpt = None,
          host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option("--port", help="TCP port (0: any free port).")] = 8646,
          max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Most requests decoded together.")] = 16,
          max_pending: Annotated[int, typer.Option("--max-pending", min=1, help="Most requests admitted and "
                                                   "unfinished; more get 429 with Retry-After.")] = 64,
          cache_bytes: Annotated[int, typer.Option("--cache-bytes", min=1, help="RAM budget for adapters, in "
                                                   "bytes.")] = 1 << 30,
          provider: Annotated[str | None, typer.Option("--provider", help="With --node: the key (in HOME/keys) "
                                                       "that signs this server's receipts; callers' API keys must "
                                                       "name its address.")] = None,
          free: Annotated[bool, typer.Option("--free", help="With --node: serve without API keys or "
                                             "billing.")] = False,
          receipt_batch: Annotated[int | None, typer.Option("--receipt-batch", min=1, help="Most receipts per "
                                                            "transaction (default the ledger's maximum).")] = None,
          passphrase_file: PassphraseFile = None,
          attribution: Annotated[bool | None, typer.Option("--attribution/--no-attribution", help="Attribute every "
                                                           "answer of adapters with an attribution bundle (default: "
                                                           "on when one has a bundle).")] = None,
          attribution_db: Annotated[str | None, typer.Option("--attribution-db", metavar="FILE|URL", help="SQLite "
                                                             "file or postgresql://... database for attribution "
                                                             "records (default HOME/serving/attribution.sqlite).")]
          = None,
          ) -> None:
    """Serve completions and chat completions, OpenAI-compatible, on loopback by default."""
    from ailedger.api.server import StopSignals, bind, url_of
    from ailedger.factory.basemodel import load_base
    from ailedger.serving.billing import LedgerBilling
    from ailedger.serving.catalog import Catalog
    from ailedger.serving.retrieval import Retriever
    from ailedger.serving.stack import build_stack, served_base

    s = settings(ctx)
    if node and not free and provider is None:
        raise LedgerError(errors.BAD_ARGUMENT, "with --node, give --provider KEY (the key that signs receipts; "
                                               "callers authorize API keys for its address), or --free to serve "
                                               "without billing")
    if provider is not None and not node:
        raise LedgerError(errors.BAD_ARGUMENT, "--provider needs --node: receipts go to that ledger")
    signer = unlock_key(s, provider, passphrase_file) if provider is not None and not free else None

    def progress(stage: str, done: int, total: int | None) -> None:
        if not s.json:
            print(f"{stage}: {done}/{total if total is not None else '?'}", file=sys.stderr, flush=True)

    with StopSignals() as stop, ExitStack() as scope:  # SIGTERM, like Ctrl-C, stops the server and returns normally
        loaded = load_base(base, progress=progress)
        served = served_base(loaded)
        retriever, billing = None, None
        if node:
            backend = scope.enter_context(open_backend(s, node, None))  # open until the server stops
            catalog = Catalog.from_ledger(served, backend.ledger_models(include_retired=True), adapters)
            retriever = Retriever(backend)
            if signer is not None:
                billing = LedgerBilling(backend, signer, batch_size=receipt_batch)
        else:
            catalog = Catalog.from_directory(served, adapters)
        worker = attribution_worker(loaded, catalog, attribution, attribution_db or str(s.home / "serving" /
                                                                                         "attribution.sqlite"),
                                    progress)
        stack = build_stack(loaded, catalog, max_batch=max_batch, cache_bytes=cache_bytes, billing=billing,
                            attribution=worker)
        sock = bind(host, port)
        try:
            stack.start()
            if not stop.requested:
                _server(stack.app(max_pending=max_pending, retriever=retriever), url_of(sock)).run(sockets=[sock])
        finally:
            stack.close()
            sock.close()


def attribution_worker(base: BaseModel, catalog: Catalog, wanted: bool | None, db: Path | str,
                        progress: Callable[[str, int, int | None], None]) -> AttributionWorker | None:
    """The worker over every served adapter with a bundle; None when attribution is off or nothing has one.

    On the ledger the bundle must have the root the adapter's owner published (`attribution_root_mismatch`
    otherwise), so a server cannot pay contributors by an index nobody can check.
    """
    from ailedger.attribution.attributor import BUNDLE_DIR, MANIFEST
    from ailedger.serving.attribution_store import AttributionStore
    from ailedger.serving.attribution_worker import AttributionWorker

    if wanted is False:
        return None
    # keyed by (name, version): a served adapter holds its ledger provenance, a dict, so it is not hashable
    bundled = {(a.name, a.version): a for a in catalog.served()
               if a.path is not None and (a.path / BUNDLE_DIR / MANIFEST).is_file()}
    if not bundled:
        if wanted:
            raise LedgerError(errors.ATTRIBUTION_MISSING, "--attribution: no served adapter has "
                                                          f"{BUNDLE_DIR}/{MANIFEST}")
        return None
    from ailedger.attribution.attributor import ServingAttribution

    progress("attribution bundles", 0, len(bundled))
    hook = ServingAttribution.from_dirs({ref: a.path for ref, a in bundled.items() if a.path is not None}, base,
                                        roots={ref: a.provenance.get("attribution_root") for ref, a in bundled.items()})
    progress("attribution bundles", len(bundled), len(bundled))
    return AttributionWorker(hook, AttributionStore(db))


def _server(app: Any, url: str) -> uvicorn.Server:
    """A uvicorn server that prints "listening on URL" once it accepts connections."""
    import uvicorn

    class Announcing(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                print(f"listening on {url}", flush=True)

    return Announcing(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                     timeout_graceful_shutdown=5, timeout_keep_alive=5))
