"""`ailedger anchor deploy | start | list | verify | prove | check-proof`: the ledger's roots on an EVM chain.

The work lives in ailedger.chain.anchor; this module parses options, opens the data directory with
`Store.open`, and prints. web3 loads only when one of these commands runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ailedger.chain.anchor.audit import AnchorReport, verify_anchors
from ailedger.chain.anchor.checkproof import check_document
from ailedger.chain.anchor.contract import AnchorContract, checksum_address, deploy
from ailedger.chain.anchor.evmkey import KEY_ENV, load_key
from ailedger.chain.anchor.poster import Backoff, Poster
from ailedger.chain.anchor.proof import prove_account, prove_receipt
from ailedger.chain.anchor.proofdoc import ProofDocument, parse_document
from ailedger.chain.store import Store
from ailedger.cli.backend import ChainDirOpt, data_dir_of
from ailedger.cli.keys import key_dir, read_text
from ailedger.cli.output import Explained, Settings, emit, kv_table, marked, settings, short, units
from ailedger.core import errors
from ailedger.core.address import decode_address
from ailedger.core.errors import LedgerError
from ailedger.modules import default_runtime

app = typer.Typer(help="Anchor the chain's block hashes and roots on an EVM chain; verify and prove against them.",
                  no_args_is_help=True)

RpcOpt = Annotated[str, typer.Option("--rpc", envvar="AILEDGER_ANCHOR_RPC",
                                     help="EVM JSON-RPC URL, e.g. http://127.0.0.1:8545 (env AILEDGER_ANCHOR_RPC).")]
ContractOpt = Annotated[str, typer.Option(
    "--contract", envvar="AILEDGER_ANCHOR_CONTRACT", help="The LedgerAnchor contract's 0x address (env "
    "AILEDGER_ANCHOR_CONTRACT).")]
KeyFileOpt = Annotated[Path | None, typer.Option(
    "--key-file", dir_okay=False, help=f"File whose first line is the anchorer's EVM private key (hex); else "
    f"${KEY_ENV}.")]


@contextmanager
def _store(directory: Path) -> Iterator[Store]:
    store = Store.open(directory)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _replay_bar(s: Settings, label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr for a replay, fed (height, top) per block; hidden under --json."""
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=s.err, transient=True, disable=s.json) as bar:
        task = bar.add_task(label, total=None)
        yield lambda h, top: bar.update(task, completed=h, total=max(top, 1))


def _say(s: Settings) -> Callable[[str], None]:
    def say(line: str) -> None:
        s.err.print(f"[{datetime.now(UTC):%H:%M:%S}] {line}", markup=False, highlight=False, soft_wrap=True)
        sys.stderr.flush()
    return say


@app.command("deploy")
def deploy_cmd(ctx: typer.Context, rpc: RpcOpt, key_file: KeyFileOpt = None, data_dir: ChainDirOpt = None,
               anchorer: Annotated[str | None, typer.Option(
                   "--anchorer", help="The only address allowed to post anchors (default: the key's address).")]
               = None) -> None:
    """Deploy a LedgerAnchor contract for this data directory's chain id, paid by the EVM key."""
    s = settings(ctx)
    key = load_key(key_file)
    with _store(data_dir_of(s, data_dir)) as store:
        chain_id = store.genesis.chain_id
    poster = checksum_address(anchorer) if anchorer else key.address
    sent = deploy(rpc, key, poster, chain_id)
    assert sent.contract is not None
    out = {"contract": sent.contract, "tx_hash": sent.tx_hash, "evm_block": sent.evm_block, "anchorer": poster,
           "ledger_chain_id": chain_id, "evm_chain_id": AnchorContract(rpc, sent.contract).evm_chain_id(), "rpc": rpc}
    emit(s, out, lambda c: c.print(kv_table("LedgerAnchor deployed", out.items())))


@app.command("start")
def start_cmd(ctx: typer.Context, rpc: RpcOpt, contract: ContractOpt,
              every: Annotated[int, typer.Option("--every", min=1, help="Anchor every N ledger blocks.")] = 10,
              key_file: KeyFileOpt = None, data_dir: ChainDirOpt = None,
              poll: Annotated[float, typer.Option("--poll", min=0.01, help="Seconds between looks at the chain.")]
              = 2.0,
              max_backoff: Annotated[float, typer.Option(
                  "--max-backoff", min=0.01, help="Longest wait, in seconds, between retries while the RPC is down.")]
              = 30.0,
              until_height: Annotated[int | None, typer.Option(
                  "--until-height", min=1, help="Stop once this height is anchored (default: run until interrupted).")]
              = None) -> None:
    """Post the chain's block hash and roots every N blocks; waits out an RPC outage and resumes."""
    s = settings(ctx)
    key = load_key(key_file)
    say = _say(s)
    with _store(data_dir_of(s, data_dir)) as store:
        target = AnchorContract(rpc, contract)
        poster = Poster(store, target, key, every, say, poll, Backoff(min(0.5, max_backoff), max_backoff))
        say(f"anchoring chain {store.genesis.chain_id!r} every {every} blocks to {target.address} on {rpc} "
            f"as {key.address}")
        try:
            posted = poster.run(until_height)
        except KeyboardInterrupt:
            say("stopped")
            return
    out = {"posted": [p.to_json() for p in posted], "contract": target.address}
    emit(s, out, lambda c: c.print(f"posted {len(posted)} anchor(s); anchored up to height {until_height}"))


def _anchors_table(c: Console, info: dict[str, Any]) -> None:
    c.print(kv_table("LedgerAnchor", [(k, v) for k, v in info.items() if k != "anchors"]))
    table = Table(title_justify="left")
    for col in ("height", "block hash", "state root", "receipts root", "EVM block"):
        table.add_column(col)
    for a in info["anchors"]:
        table.add_row(str(a["height"]), short(a["block_hash"]), short(a["state_root"]), short(a["receipts_root"]),
                      str(a["evm_block"]))
    c.print(table)


@app.command("list")
def list_cmd(ctx: typer.Context, rpc: RpcOpt, contract: ContractOpt) -> None:
    """Show the contract's anchorer, ledger chain id and every anchor it holds."""
    s = settings(ctx)
    target = AnchorContract(rpc, contract)
    target.check_code()
    info = {"contract": target.address, "evm_chain_id": target.evm_chain_id(), "anchorer": target.anchorer(),
            "ledger_chain_id": target.ledger_chain_id(), "last_height": target.last_height(),
            "anchors": [a.to_json() for a in target.anchors()]}
    emit(s, info, lambda c: _anchors_table(c, info))


def _render_report(c: Console, r: AnchorReport) -> None:
    rows: list[tuple[str, Any]] = [("result", marked(r.ok, "ok" if r.ok else "FAILED")),
                                   ("anchors on the EVM chain", r.anchors), ("anchors matched", r.anchors_checked),
                                   ("blocks replayed", r.blocks_replayed), ("head height", r.head_height),
                                   ("last anchored height", r.last_anchored),
                                   ("stored state checked", r.state_rows_checked)]
    if not r.ok:
        rows += [("first bad block", r.first_bad_height), ("error", r.error), ("detail", r.detail)]
    c.print(kv_table("anchor verify", rows))


@app.command("verify")
def verify_cmd(ctx: typer.Context, rpc: RpcOpt, contract: ContractOpt, data_dir: ChainDirOpt = None) -> None:
    """Replay the local chain and check every anchored block against its anchor; name the first bad block."""
    s = settings(ctx)
    target = AnchorContract(rpc, contract)
    target.check_code()
    with _store(data_dir_of(s, data_dir)) as store:
        if target.ledger_chain_id() != store.genesis.chain_id:
            raise LedgerError(errors.ANCHOR_WRONG_CHAIN, f"the contract anchors {target.ledger_chain_id()!r}")
        anchors = target.anchors()
        with _replay_bar(s, "replaying") as tick:
            report = verify_anchors(store, default_runtime(), anchors, tick)
    if report.ok or not s.json:
        emit(s, report.to_json(), lambda c: _render_report(c, report))
    if not report.ok:
        code = errors.by_name(report.error) if report.error else errors.ANCHOR_MISMATCH
        raise Explained(code, f"first bad block at height {report.first_bad_height}: {report.detail}",
                        {"report": report.to_json()})


@app.command("prove")
def prove_cmd(ctx: typer.Context, rpc: RpcOpt, contract: ContractOpt,
              receipt: Annotated[str | None, typer.Option(
                  "--receipt", help="Prove this transaction's receipt (its id, hex).")] = None,
              account: Annotated[str | None, typer.Option(
                  "--account", help="Prove this account (address or key name).")] = None,
              height: Annotated[int | None, typer.Option(
                  "--height", help="With --account: the anchored height to prove it at (default: the newest anchor).")]
              = None,
              out: Annotated[Path | None, typer.Option("--out", dir_okay=False, help="Write the document here "
                                                       "instead of printing it.")] = None,
              data_dir: ChainDirOpt = None) -> None:
    """Write a proof document: Merkle proof, headers up to an anchored block, and the anchor's EVM transaction."""
    s = settings(ctx)
    if (receipt is None) == (account is None):
        raise LedgerError(errors.BAD_ARGUMENT, "give exactly one of --receipt TXID or --account ADDRESS")
    target = AnchorContract(rpc, contract)
    with _store(data_dir_of(s, data_dir)) as store:
        if receipt is not None:
            try:
                tx_id = bytes.fromhex(receipt)
            except ValueError:
                raise LedgerError(errors.BAD_HEX, f"--receipt {receipt!r}") from None
            doc = prove_receipt(store, target, tx_id)
        else:
            assert account is not None
            address = decode_address(key_dir(s).resolve(account))
            with _replay_bar(s, "replaying to the anchor") as tick:
                doc = prove_account(store, default_runtime(), target, address, height, tick)
    text = json.dumps(doc.to_json(), indent=2, sort_keys=True)
    if out is None:
        typer.echo(text)
        return
    out.write_text(text + "\n")
    summary = {"file": str(out), "kind": doc.kind, "height": doc.headers[0].height, "anchor_height": doc.anchor.height,
               "tx_hash": doc.tx_hash}
    emit(s, summary, lambda c: c.print(kv_table(f"{doc.kind} proof written", summary.items())))


_AMOUNTS = ("balance", "stake", "unbonding", "fee")


def _load_document(path: Path) -> ProofDocument:
    try:
        raw = json.loads(read_text(path))
    except ValueError as exc:
        raise LedgerError(errors.ANCHOR_PROOF_INVALID, f"{path} is not JSON: {exc}") from None
    return parse_document(raw)


@app.command("check-proof")
def check_proof_cmd(ctx: typer.Context,
                    file: Annotated[Path, typer.Argument(help="A document from `ailedger anchor prove`.",
                                                         dir_okay=False)],
                    rpc: RpcOpt,
                    contract: Annotated[str | None, typer.Option(
                        "--contract", envvar="AILEDGER_ANCHOR_CONTRACT",
                        help="Pin the contract you trust (the one the ledger publishes); without it the document's "
                             "own contract is used and only its code is checked.")] = None) -> None:
    """Check a proof document using only the EVM chain: the anchor transaction, the headers, the Merkle proof."""
    s = settings(ctx)
    doc = _load_document(file)
    if contract is not None and checksum_address(contract) != checksum_address(doc.contract):
        raise LedgerError(errors.ANCHOR_PROOF_INVALID, f"the document names contract {doc.contract}, not {contract}")
    result = check_document(doc, AnchorContract(rpc, doc.contract))
    result["contract_pinned"] = contract is not None

    def render(c: Console) -> None:
        a = result["anchor"]
        c.print(kv_table(f"{doc.kind} proof checked against the EVM chain", [
            ("result", marked(True, "valid")), ("block", result["height"]),
            ("anchored at height", a["height"]), ("headers checked", result["headers_checked"]),
            ("anchor transaction", a["tx_hash"]), ("EVM block", a["evm_block"]),
            ("contract", a["contract"] + ("" if contract else " (taken from the document: pass --contract to pin)")),
            *[(f"proven {k}", units(v) if k in _AMOUNTS else v) for k, v in result["proven"].items()]]))

    emit(s, result, render)
