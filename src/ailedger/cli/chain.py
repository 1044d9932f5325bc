"""`ailedger chain init | verify` and `ailedger node run`: make, audit and serve a data directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ailedger.chain.genesis import Genesis
from ailedger.chain.node import now_ms
from ailedger.chain.nodekey import load_node_key, node_key_path, write_node_key
from ailedger.chain.replay import VerifyReport, verify_chain
from ailedger.chain.store import Store, attach, is_chain_dir
from ailedger.cli.backend import ChainDirOpt, data_dir_of
from ailedger.cli.keys import KeyDir, PassphraseFile, get_passphrase, key_dir, read_json_object
from ailedger.cli.output import Explained, Settings, emit, kv_table, marked, settings, units
from ailedger.core import errors
from ailedger.core.amounts import parse_units
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.modules import default_runtime

chain_app = typer.Typer(help="Create and audit a chain's data directory.", no_args_is_help=True)
node_app = typer.Typer(help="Run a node.", no_args_is_help=True)

GENESIS_FILE = "genesis.json"


def _pair(text: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise LedgerError(errors.BAD_ARGUMENT, f"{what} {text!r} must look like NAME=VALUE")
    return name.strip(), value.strip()


def parse_allocs(keys: KeyDir, allocs: list[str]) -> list[dict[str, Any]]:
    """ADDRESS_OR_KEYNAME=AMOUNT (units) -> genesis allocation entries in micro-units."""
    out = []
    for text in allocs:
        who, amount = _pair(text, "--alloc")
        out.append({"address": keys.resolve(who), "balance": parse_units(amount), "stake": 0})
    return out


def parse_params(items: list[str]) -> dict[str, int]:
    runtime = default_runtime()
    out = {}
    for text in items:
        name, value = _pair(text, "--param")
        if not value.isdigit():
            raise LedgerError(errors.BAD_PARAM, f"{name}={value!r}: values are whole numbers in the parameter's unit")
        out[name] = runtime.params.spec(name).check(int(value))
    return out


@dataclass(frozen=True)
class InitResult:
    data_dir: Path
    genesis: Genesis
    node_key: KeyPair | None

    def to_json(self) -> dict[str, Any]:
        return {"data_dir": str(self.data_dir), "genesis": self.genesis.to_json(),
                "genesis_file": str(self.data_dir / GENESIS_FILE),
                "node_key_file": str(node_key_path(self.data_dir)) if self.node_key else None,
                "proposer_address": self.node_key.address_text if self.node_key else None}


def init_chain(data_dir: Path, chain_id: str | None, allocations: list[dict[str, Any]], params: dict[str, int],
               genesis_doc: dict[str, Any] | None = None, proposer: KeyPair | None = None,
               store: str | None = None) -> InitResult:
    """Write a new data directory: genesis block and state, genesis.json, and the proposer key.

    The proposer is, in order: `proposer` if given, a node_key.json already in the directory, or a
    fresh key. A genesis file naming another proposer leaves the node without a key (read-only).
    """
    if is_chain_dir(data_dir):
        raise LedgerError(errors.ALREADY_INIT, str(data_dir))
    doc = dict(genesis_doc or {})
    if chain_id is not None:
        doc["chain_id"] = chain_id
    if "chain_id" not in doc:
        raise LedgerError(errors.BAD_ARGUMENT, "give --chain-id or a --genesis file that names one")
    doc.setdefault("timestamp_ms", now_ms())
    if allocations:
        doc["allocations"] = [*doc.get("allocations", []), *allocations]
    doc["params"] = {**doc.get("params", {}), **params}
    key = proposer or load_node_key(data_dir)
    if "proposer" not in doc:
        key = key or KeyPair.generate()
        doc["proposer"] = key.public_key.hex()
    genesis = Genesis.from_json(doc)
    if key is not None and key.public_key != genesis.proposer:
        if proposer is not None:
            raise LedgerError(errors.BAD_GENESIS, "the genesis proposer is not the key given with --node-key")
        key = None
    Store.create(data_dir, genesis, default_runtime(), store).close()
    if key is not None and load_node_key(data_dir) is None:
        write_node_key(data_dir, key)
    (data_dir / GENESIS_FILE).write_text(json.dumps(genesis.to_json(), indent=2) + "\n")
    return InitResult(data_dir, genesis, key)


def render_init(c: Console, r: InitResult) -> None:
    g = r.genesis
    c.print(kv_table(f"chain {g.chain_id} initialised", [
        ("data dir", r.data_dir), ("genesis", r.data_dir / GENESIS_FILE),
        ("proposer", r.node_key.address_text if r.node_key else f"{g.proposer.hex()} (no key here: read-only node)"),
        ("accounts", len(g.allocations)),
        ("total supply", units(sum(a.balance + a.stake for a in g.allocations)))]))


@chain_app.command("init")
def init(ctx: typer.Context, data_dir: ChainDirOpt = None,
         chain_id: Annotated[str | None, typer.Option("--chain-id", help="Chain id (1-32 bytes).")] = None,
         alloc: Annotated[list[str] | None, typer.Option(
             "--alloc", help="ADDRESS_OR_KEYNAME=AMOUNT in units; repeatable.")] = None,
         genesis: Annotated[Path | None, typer.Option("--genesis", help="Start from this genesis JSON file; "
                                                      "missing fields are filled in.", dir_okay=False)] = None,
         param: Annotated[list[str] | None, typer.Option("--param", help="NAME=VALUE ledger parameter in its own "
                                                         "unit (see `ailedger params`); repeatable.")] = None,
         node_key: Annotated[str | None, typer.Option("--node-key", help="Use this keystore key as the block "
                                                      "proposer instead of a fresh one.")] = None,
         passphrase_file: PassphraseFile = None,
         store: Annotated[str | None, typer.Option("--store", metavar="URL", help="Keep the chain's rows in this "
                                                   "PostgreSQL database (postgresql://...) instead of the data "
                                                   "directory's SQLite file.")] = None) -> None:
    """Create a data directory holding a new chain and its proposer key."""
    s = settings(ctx)
    keys = key_dir(s)
    directory = data_dir_of(s, data_dir)
    doc = read_json_object(genesis, errors.BAD_GENESIS) if genesis is not None else None
    proposer = keys.unlock(node_key, get_passphrase(passphrase_file)) if node_key else None
    result = init_chain(directory, chain_id, parse_allocs(keys, alloc or []), parse_params(param or []), doc,
                        proposer, store)
    emit(s, result.to_json(), lambda c: render_init(c, result))


def verify_data_dir(s: Settings, directory: Path) -> VerifyReport:
    """Replay the chain in `directory` with a progress bar on stderr."""
    store = Store.open(directory)
    try:
        total = store.height()
        columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=s.err, transient=True, disable=s.json) as bar:
            task = bar.add_task("replay", total=max(total, 1))
            return verify_chain(store, default_runtime(), lambda h, top: bar.update(task, completed=h))
    finally:
        store.close()


def render_report(c: Console, r: VerifyReport) -> None:
    rows: list[tuple[str, Any]] = [("result", marked(r.ok, "ok" if r.ok else "FAILED")),
                                   ("blocks replayed", r.blocks), ("transactions", r.txs),
                                   ("head height", r.head_height), ("state root", r.state_root)]
    if not r.ok:
        rows += [("first bad block", r.first_bad_height), ("error", r.error), ("detail", r.detail)]
    c.print(kv_table("chain verify", rows))


@chain_app.command("verify")
def verify(ctx: typer.Context, data_dir: ChainDirOpt = None) -> None:
    """Replay every block from genesis; report the first block whose roots disagree."""
    s = settings(ctx)
    report = verify_data_dir(s, data_dir_of(s, data_dir))
    if report.ok or not s.json:
        emit(s, report.to_json(), lambda c: render_report(c, report))
    if not report.ok:
        raise report_failure(report)


def report_failure(report: VerifyReport) -> Explained:
    code = errors.by_name(report.error) if report.error else errors.STORE_CORRUPT
    return Explained(code, f"first bad block at height {report.first_bad_height}: {report.detail}",
                     {"report": report.to_json()})


@node_app.command("run")
def run(ctx: typer.Context, data_dir: ChainDirOpt = None,
        host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8645,
        block_interval: Annotated[float, typer.Option("--block-interval", help="Seconds between blocks while "
                                                      "transactions are pending.")] = 0.5,
        explorer: Annotated[bool, typer.Option("--explorer", help="Also serve the explorer's pages under / "
                                               "(replays the chain once at start to index its history).")] = False,
        follow: Annotated[str | None, typer.Option(
            "--follow", metavar="URL", help="Run a read replica of the node at URL: verify and serve its blocks, "
            "forward writes to it (the data directory is made from its genesis if new; --block-interval is how "
            "often it asks for new blocks).")] = None,
        workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="API processes sharing the port; more "
                                             "than 1 needs a chain in PostgreSQL (one of them seals blocks).")] = 1,
        store: Annotated[str | None, typer.Option("--store", metavar="URL", help="Serve the chain kept in this "
                                                  "PostgreSQL database, pointing a fresh --data-dir at it first "
                                                  "(API processes on several machines, one chain).")] = None
        ) -> None:
    """Serve the data directory over HTTP and produce blocks with its proposer key (or follow a primary)."""
    from ailedger.api.server import serve

    s = settings(ctx)
    directory = data_dir_of(s, data_dir)
    if store is not None:
        if follow is not None:
            raise LedgerError(errors.BAD_ARGUMENT, "a replica (--follow) keeps its own store; drop --store")
        attach(directory, store)
    if follow is None:
        Store.open(directory).close()  # a missing chain is reported here, before the server starts
    if workers > 1:
        from ailedger.api.workers import serve_workers

        if follow is not None:
            raise LedgerError(errors.BAD_ARGUMENT, "a replica (--follow) runs as one process; drop --workers")
        serve_workers(directory, host, port, block_interval, workers,
                      extend="ailedger.web.app:add_explorer" if explorer else None)
        return
    from ailedger.web.app import add_explorer

    serve(directory, host, port, block_interval, node_key=load_node_key(directory),
          extend=add_explorer if explorer else None, follow=follow)
