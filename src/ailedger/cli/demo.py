"""`ailedger demo --ledger`: the whole ledger in under a minute, against a real node on a real socket.

(`ailedger demo` without --ledger is the payable-inference loop of `demo_loop.py`.)

Keys -> genesis -> a node process -> transfers, stake, unstake over HTTP -> a block -> an account
proof checked offline -> a refused transaction and its code -> unbonding released -> node stopped
-> full replay. Each step prints the command a person would type to do the same by hand.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn

from ailedger.chain.accounts import AMOUNT_CODEC, STAKE, TRANSFER, TRANSFER_CODEC, UNSTAKE, Amount, Transfer
from ailedger.chain.proofs import verify_account_proof
from ailedger.cli.backend import Backend
from ailedger.cli.chain import init_chain, render_report, report_failure, verify_data_dir
from ailedger.cli.keys import KeyDir
from ailedger.cli.output import emit, error_line, kv_table, marked, ok_mark, settings, units
from ailedger.cli.query import proven_account, render_account, render_block
from ailedger.cli.tx import send
from ailedger.core import errors, workdir
from ailedger.core.amounts import MICRO
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair

MARKER = ".ailedger-demo"
PASSPHRASE = "demo passphrase, never use it for real keys"
NAMES = ("alice", "bob", "carol")


def fresh_dir(d: Path) -> Path:
    """Wipe and recreate `d`, but only if it is empty or was made by an earlier demo."""
    return workdir.fresh_dir(d, MARKER, "made by `ailedger demo`; wiped by the next run\n",
                             "is not empty and was not made by `ailedger demo`; pick --dir").resolve()


def _pump(stream: IO[str], log: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        log.write(line)
        log.flush()
        lines.put(line)


@contextmanager
def running_node(home: Path, data: Path, log_path: Path, interval: float) -> Iterator[str]:
    """`ailedger node run` in a child process on a free port; yields its URL, stops it on exit."""
    cmd = [sys.executable, "-m", "ailedger.cli.main", "--home", str(home), "node", "run", "--data-dir", str(data),
           "--port", "0", "--block-interval", str(interval)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, log, lines), daemon=True).start()
        try:
            yield _await_url(proc, lines, log_path)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _await_url(proc: subprocess.Popen[str], lines: queue.Queue[str], log_path: Path) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        if line.startswith("listening on "):
            return line.split()[-1]
    raise LedgerError(errors.NODE_UNREACHABLE, f"the node did not start; see {log_path}")


def demo(ctx: typer.Context,
         directory: Annotated[Path | None, typer.Option(
             "--dir", help="Working directory (default ./.demo, or ./.demo-ledger with --ledger).", file_okay=False)]
         = None,
         fresh: Annotated[bool, typer.Option("--fresh", help="Wipe an earlier run in the directory first.")] = False,
         resume: Annotated[bool, typer.Option("--continue", help="Go on with the earlier run in the directory "
                                                                 "(from its first unfinished stage).")] = False,
         ledger: Annotated[bool, typer.Option("--ledger", help="Only the ledger walk-through (keys, transfers, "
                                                               "stake, a proof, a replay; a few seconds).")] = False,
         base: Annotated[str, typer.Option("--base", help="`smollm2` (shipped) or a Hugging Face model "
                                                          "directory.")] = "smollm2",
         facts_per_owner: Annotated[int, typer.Option("--facts-per-owner", min=1, max=8, hidden=True)] = 4,
         questions_per_owner: Annotated[int, typer.Option("--questions-per-owner", min=1, max=8, hidden=True)] = 2,
         epochs: Annotated[int, typer.Option("--epochs", min=1, hidden=True)] = 8,
         k: Annotated[int, typer.Option("--k", min=4, hidden=True)] = 2048,
         max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, hidden=True)] = 40,
         block_interval: Annotated[float, typer.Option("--block-interval", help="Node block interval (s).")] = 0.2
         ) -> None:
    """Payable inference end to end: a Datanet, a fine-tune, paid answers with attribution, settlement (minutes)."""
    if ledger:
        ledger_demo(ctx, directory or Path(".demo-ledger"), block_interval)
        return
    from ailedger.cli.demo_loop import DemoConfig, payable_demo

    s = settings(ctx)
    cfg = DemoConfig(base=base, facts_per_owner=facts_per_owner, questions_per_owner=questions_per_owner,
                     epochs=epochs, k=k, max_tokens=max_tokens, block_interval=block_interval)
    interactive = sys.stdin.isatty() and not s.json
    summary = payable_demo(s, directory or Path(".demo"), cfg, fresh, resume, interactive)
    emit(s, summary, lambda c: None)


def ledger_demo(ctx: typer.Context, directory: Path, block_interval: float) -> None:
    """Walk through the ledger end to end with a real node (a few seconds)."""
    s = settings(ctx)
    c = s.err if s.json else s.out
    started = time.monotonic()
    root = fresh_dir(directory)
    home, data = root / "home", root / "data"
    cli = f"ailedger --home {home}"

    def step(title: str, command: str | None = None) -> None:
        c.rule(f"[bold]{title}")
        if command:
            c.print(f"[dim]$ {cli} {command}[/dim]", soft_wrap=True)

    step("1. keys", "keys new alice   # passphrase from AILEDGER_PASSPHRASE, else a hidden prompt")
    keydir = KeyDir(home / "keys")
    keys: dict[str, KeyPair] = {}
    with c.status("deriving keystore keys with Argon2id…"):
        for name in NAMES:
            keys[name], path = keydir.create(name, PASSPHRASE)
            c.print(f"{ok_mark(True)} {name:<6} {keys[name].address_text}  [dim]{path.name}, mode 0600[/dim]")
        try:
            keydir.unlock("alice", "not the passphrase")
        except LedgerError as exc:
            c.print(f"unlocking with a wrong passphrase is refused: [yellow]{escape(error_line(exc))}[/yellow]")
    alice, bob, carol = (keys[n] for n in NAMES)

    step("2. genesis", "chain init --chain-id ailedger-demo --alloc alice=1000 --alloc bob=250 --alloc carol=5 "
         "--param unbonding_blocks=2")
    allocs = [{"address": keys[n].address_text, "balance": amount * MICRO} for n, amount in
              (("alice", 1000), ("bob", 250), ("carol", 5))]
    init = init_chain(data, "ailedger-demo", allocs, {"unbonding_blocks": 2})
    proposer = init.node_key.address_text if init.node_key else "?"
    c.print(f"{ok_mark(True)} chain {init.genesis.chain_id} in {escape(str(data))}, proposer {proposer}")

    step("3. node", f"node run --data-dir {data} --port 0 --block-interval {block_interval}")
    from ailedger.api.client import HttpClient

    with running_node(home, data, root / "node.log", block_interval) as url, HttpClient(url) as client:
        c.print(f"{ok_mark(True)} node listening on {url}  [dim](log: {escape(str(root / 'node.log'))})[/dim]")
        figures = _walk(c, client, cli, url, root, alice, bob, carol)
        step("9. stop the node")
    c.print(f"{ok_mark(True)} node stopped")

    step("10. audit", f"chain verify --data-dir {data}")
    report = verify_data_dir(s, data)
    render_report(c, report)
    if not report.ok:
        raise report_failure(report)
    elapsed = time.monotonic() - started
    summary = {**figures, "verified": report.ok, "blocks": report.head_height, "txs": report.txs,
               "state_root": report.state_root, "seconds": round(elapsed, 2), "dir": str(root)}

    def render(out: Console) -> None:
        out.rule("[bold]summary")
        out.print(kv_table("ailedger demo", [
            *[(f"{n} balance / stake", f"{units(figures['balances'][n])} / {units(figures['stakes'][n])}")
              for n in NAMES],
            ("refused transaction", figures["refused"]), ("account proof", "verified offline"),
            ("replay", marked(report.ok, f"{report.head_height} blocks, {report.txs} transactions")),
            ("state root", report.state_root), ("time", f"{elapsed:.1f} s")]))

    emit(s, summary, render)


def _walk(c: Console, client: Backend, cli: str, url: str, root: Path, alice: KeyPair, bob: KeyPair,
          carol: KeyPair) -> dict[str, Any]:
    node = f"--node {url}"

    def show(title: str, command: str) -> None:
        c.rule(f"[bold]{title}")
        c.print(f"[dim]$ {cli} {command}[/dim]", soft_wrap=True)

    def pay(frm: KeyPair, tx_type: int, payload: bytes, what: str) -> dict[str, Any]:
        with c.status(f"{what}: waiting for inclusion…"):
            t = send(client, frm, tx_type, payload)
        r = t["receipt"]
        c.print(f"{ok_mark(r['ok'])} {what}: block {t['height']}, tx {t['id'][:16]}…, fee {units(r['fee'])}")
        return t

    show("4. transfers", f"tx transfer --from alice --to bob --amount 25 {node}")
    pay(alice, TRANSFER, TRANSFER_CODEC.encode(Transfer(bob.address, 25 * MICRO)), "alice → bob 25")
    pay(bob, TRANSFER, TRANSFER_CODEC.encode(Transfer(carol.address, 10 * MICRO)), "bob → carol 10")

    show("5. stake and unstake", f"tx stake --from alice --amount 100 {node}")
    pay(alice, STAKE, AMOUNT_CODEC.encode(Amount(100 * MICRO)), "alice stakes 100")
    last = pay(alice, UNSTAKE, AMOUNT_CODEC.encode(Amount(40 * MICRO)), "alice unstakes 40")
    render_account(c, client.account(alice.address_text))

    show("6. a block", f"block show {last['height']} {node}")
    render_block(c, client.block(last["height"]))

    show("7. an account proof, checked offline", f"--json account show alice --proof {node} > alice-proof.json")
    acct = proven_account(client, alice.address_text)
    proof_file = root / "alice-proof.json"
    proof_file.write_text(json.dumps(acct, indent=2) + "\n")
    root_hex = acct["proof_verified"]["state_root"]
    c.print(f"[dim]$ {cli} proof verify {proof_file} --root {root_hex}[/dim]", soft_wrap=True)
    proven = verify_account_proof(json.loads(proof_file.read_text())["proof"], bytes.fromhex(root_hex))
    c.print(f"{ok_mark(True)} alice's balance {units(proven.balance)} and stake {units(proven.stake)} hash up to "
            f"block {acct['proof']['height']}'s state root {root_hex[:16]}…")
    forged = {**acct["proof"], "account": {**acct["proof"]["account"], "balance": proven.balance + MICRO}}
    try:
        verify_account_proof(forged, bytes.fromhex(root_hex))
    except LedgerError as exc:
        c.print(f"{ok_mark(True)} the same proof with one more unit is rejected: "
                f"[yellow]{escape(error_line(exc))}[/yellow]")

    show("8. a refused transaction", f"tx transfer --from carol --to alice --amount 1000000 {node}")
    refused = "none"
    try:
        send(client, carol, TRANSFER, TRANSFER_CODEC.encode(Transfer(alice.address, 1_000_000 * MICRO)))
    except LedgerError as exc:
        refused = exc.code.name
        c.print(f"{ok_mark(True)} refused, nothing charged: [yellow]{escape(error_line(exc))}[/yellow]")
    if refused == "none":
        raise LedgerError(errors.INTERNAL, "the overdraft was accepted")

    c.print("[bold]waiting for alice's unbonding stake to return (each block needs a transaction)…")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=c, transient=True) as bar:
        task = bar.add_task("unbonding")
        while (a := client.account(alice.address_text))["unbonding"]:
            bar.update(task, description=f"height {a['height']}: {units(a['unbonding'])} still unbonding")
            send(client, bob, TRANSFER, TRANSFER_CODEC.encode(Transfer(carol.address, 1)))
    render_account(c, client.account(alice.address_text))
    people = {"alice": alice, "bob": bob, "carol": carol}
    accounts = {n: client.account(k.address_text) for n, k in people.items()}
    return {"balances": {n: a["balance"] for n, a in accounts.items()},
            "stakes": {n: a["stake"] for n, a in accounts.items()}, "refused": refused}
