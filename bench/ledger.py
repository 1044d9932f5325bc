"""The ledger benchmark: how much of the signature-checking ceiling survives the rest of the ledger.

Why this ratio: every transfer carries one Ed25519 signature that the state machine must check, so
on one core the ledger can never apply transfers faster than libsodium verifies signatures. Raw
verifications per second is therefore the ceiling, and `ratio` = applied transfers per second /
verifications per second says how much of it decoding, the nonce/fee/balance rules, the Merkle
state root and the SQLite commit eat. The target is 0.5: no more than half of the time may go to
anything other than checking signatures.

Everything is measured in one process pinned to one core, with the same functions a node calls
(`decode_tx`, `Runtime.build_block`, `Store.commit_block`, `Runtime.validate_block`,
`State.proof`, `verify_proof`), so the figures mean the same on machines with different core
counts and are not flattered by other threads. All transactions are signed before any clock
starts: signing is the client's cost, not the ledger's.

Run it as `ailedger bench ledger [--quick]` or `python -m bench.ledger [--quick]`; the last line
of stdout is one JSON object with the figures.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import bench
from ailedger.chain.accounts import TRANSFER, TRANSFER_CODEC, Transfer, account_key
from ailedger.chain.block import BlockHeader
from ailedger.chain.genesis import Allocation, Genesis
from ailedger.chain.runtime import Runtime
from ailedger.chain.state import State, leaf_data
from ailedger.chain.store import Store
from ailedger.chain.tx import SIGN_TAG, decode_tx, sign_tx
from ailedger.core.keys import KeyPair, verify
from ailedger.core.merkle import verify_proof
from ailedger.modules import default_runtime

CHAIN_ID = "ailedger-bench"
BLOCK_TXS = 1_000
FEE = 1_000
TARGET_RATIO = 0.5
GENESIS_MS = 1_700_000_000_000
START_BALANCE = 10**12
FULL_TX, QUICK_TX, ACCOUNTS = 30_000, 5_000, 2_000

_err = Console(stderr=True)


@dataclass(frozen=True)
class Workload:
    """A genesis with many funded senders and transfers that all apply, signed in advance."""

    genesis: Genesis
    proposer: KeyPair
    addresses: list[bytes]
    txs: list[bytes]


def pin_to_one_core() -> int:
    """Pin to the first allowed CPU, so that the figures are single-core figures on any machine."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def make_workload(n_tx: int, n_accounts: int) -> Workload:
    """Round-robin senders so that each block of 1,000 holds 1,000 distinct accounts.

    Transaction j is sent by account j mod n with nonce j div n, so in wire order every nonce is
    exactly the next one; recipients are spread over other accounts (never the sender, as long as
    n > 98) so that each block touches about two thousand state leaves, as real traffic would.
    """
    if n_accounts <= 98:
        raise ValueError("need more than 98 accounts so that no transfer is a self-transfer")
    keys = [KeyPair.from_seed(b"bench/" + i.to_bytes(26, "big")) for i in range(n_accounts)]
    proposer = KeyPair.from_seed(b"bench/proposer".ljust(32, b"\0"))
    genesis = Genesis(CHAIN_ID, GENESIS_MS, proposer.public_key,
                      [Allocation(k.address, START_BALANCE) for k in keys])
    txs = []
    for j in range(n_tx):
        s = j % n_accounts
        to = keys[(s + 1 + j % 97) % n_accounts].address
        payload = TRANSFER_CODEC.encode(Transfer(to, 1 + j % 1_000))
        txs.append(sign_tx(keys[s], CHAIN_ID, j // n_accounts, FEE, TRANSFER, payload))
    return Workload(genesis, proposer, [k.address for k in keys], txs)


def verify_cases(raws: list[bytes]) -> list[tuple[bytes, bytes, bytes]]:
    """(public key, signed message, signature) of each transaction: exactly what the ledger checks."""
    return [(t.sender, SIGN_TAG + t.body, t.signature) for t in map(decode_tx, raws)]


def time_verify(cases: list[tuple[bytes, bytes, bytes]]) -> float:
    """Seconds for bare `verify` calls over `cases`: the ceiling for (b)."""
    t0 = time.perf_counter()
    ok = all([verify(pk, msg, sig) for pk, msg, sig in cases])
    elapsed = time.perf_counter() - t0
    if not ok:
        raise RuntimeError("a pre-signed transaction failed verification")
    return elapsed


def measure_apply(data_dir: Path, runtime: Runtime, work: Workload,
                  url: str | None = None) -> tuple[float, float, int, list[float]]:
    """Wire bytes to durable blocks: decode, build (verify + apply + roots + sign), commit to SQLite.

    Right before each block, the bare signature checks of that same block are timed. Interleaving
    the two means a noisy neighbour slows both sides alike, so their ratio stays meaningful on a
    shared machine. Returns (verify seconds, apply seconds, blocks, per-block ratios).
    """
    store = Store.create(data_dir, work.genesis, runtime, url)  # url: a PostgreSQL database (bench store)
    state = store.load_state()
    parent: BlockHeader = store.head()
    blocks = 0
    verify_s = apply_s = 0.0
    ratios: list[float] = []
    for start in range(0, len(work.txs), BLOCK_TXS):
        chunk = work.txs[start:start + BLOCK_TXS]
        v = time_verify(verify_cases(chunk))
        t0 = time.perf_counter()
        txs = [decode_tx(raw) for raw in chunk]
        built = runtime.build_block(state, parent, parent.timestamp_ms + 1_000, work.proposer, txs)
        if built.block is None or built.rejected or len(built.included) != len(txs):
            raise RuntimeError(f"block {parent.height + 1} refused {len(built.rejected)} transaction(s)")
        store.commit_block(built)
        a = time.perf_counter() - t0
        parent = built.block.header
        blocks += 1
        verify_s += v
        apply_s += a
        ratios.append(v / a)
    store.close()
    return verify_s, apply_s, blocks, ratios


def measure_replay(data_dir: Path, runtime: Runtime) -> tuple[float, int, int, State]:
    """What an auditor pays: reopen the store, rebuild genesis, re-validate every block in order."""
    t0 = time.perf_counter()
    store = Store.open(data_dir)
    block0, state = runtime.genesis_block(store.genesis)
    parent = block0.header
    blocks = txs = 0
    for block in store.blocks(1):
        runtime.validate_block(state, parent, block)
        parent = block.header
        blocks += 1
        txs += len(block.txs)
    elapsed = time.perf_counter() - t0
    if state.root() != store.head().state_root:
        raise RuntimeError("replayed state root differs from the stored head")
    store.close()
    return elapsed, blocks, txs, state


def measure_proofs(state: State, addresses: list[bytes]) -> tuple[float, float]:
    """Median microseconds to build one account proof from the live state and to check it."""
    root = state.root()
    build_ns: list[int] = []
    check_ns: list[int] = []
    for address in addresses:
        key = account_key(address)
        t0 = time.perf_counter_ns()
        found = state.proof(key)
        t1 = time.perf_counter_ns()
        if found is None:
            raise RuntimeError("a funded account has no state leaf")
        value, proof = found
        data = leaf_data(key, value)
        t2 = time.perf_counter_ns()
        ok = verify_proof(root, data, proof)
        t3 = time.perf_counter_ns()
        if not ok:
            raise RuntimeError("an account proof did not verify")
        build_ns.append(t1 - t0)
        check_ns.append(t3 - t2)
    return statistics.median(build_ns) / 1_000, statistics.median(check_ns) / 1_000


def run(quick: bool) -> dict[str, Any]:
    """Run every measurement once, print a table, and return the figures."""
    cpu = pin_to_one_core()
    n_tx = QUICK_TX if quick else FULL_TX
    runtime = default_runtime()
    _err.print(f"[dim]pinned to cpu {cpu}; signing {n_tx:,} transfers from {ACCOUNTS:,} accounts…[/]")
    work = make_workload(n_tx, ACCOUNTS)
    with tempfile.TemporaryDirectory(prefix="ailedger-bench-") as tmp:
        data_dir = Path(tmp) / "chain"
        _err.print("[dim]applying blocks of 1,000 into a SQLite WAL store, each after timing its bare "
                   "signature checks…[/]")
        verify_s, apply_s, blocks, ratios = measure_apply(data_dir, runtime, work)
        _err.print("[dim]replaying the chain from genesis…[/]")
        replay_s, replay_blocks, replay_txs, state = measure_replay(data_dir, runtime)
    _err.print("[dim]building and checking account proofs…[/]")
    build_us, check_us = measure_proofs(state, work.addresses)
    applied_per_s = n_tx / apply_s
    verify_per_s = n_tx / verify_s
    result: dict[str, Any] = {
        "name": "ledger",
        "verify_per_s": round(verify_per_s, 1),
        "applied_tx_per_s": round(applied_per_s, 1),
        "ratio": round(applied_per_s / verify_per_s, 4),
        "ratio_block_median": round(statistics.median(ratios), 4),
        "ratio_block_min": round(min(ratios), 4),
        "replay_blocks_per_s": round(replay_blocks / replay_s, 2),
        "replay_tx_per_s": round(replay_txs / replay_s, 1),
        "proof_build_us": round(build_us, 2),
        "proof_verify_us": round(check_us, 2),
        "target_ratio": TARGET_RATIO,
        "tx": n_tx,
        "accounts": ACCOUNTS,
    }
    print_table(result, blocks, apply_s, replay_s)
    return result


def print_table(r: dict[str, Any], blocks: int, apply_s: float, replay_s: float) -> None:
    """Short rows so that the table stays readable at 80 columns (a pipe or a CI log)."""
    table = Table(title=f"ledger benchmark: {r['tx']:,} transfers, {r['accounts']:,} accounts, one core")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("what it covers")
    met = r["ratio"] >= r["target_ratio"]
    rows = [
        ("Ed25519 verify", f"{r['verify_per_s']:,.0f} /s", "keys.verify over the signed tx bytes"),
        ("transfers applied", f"{r['applied_tx_per_s']:,.0f} /s", f"decode+build+commit, {apply_s:.2f} s"),
        ("ratio", f"[{'green' if met else 'red'}]{r['ratio']:.3f}[/]",
         f"applied / verify, target ≥ {r['target_ratio']}"),
        ("ratio per block", f"{r['ratio_block_median']:.3f}", f"median (min {r['ratio_block_min']:.3f})"),
        ("replay", f"{r['replay_blocks_per_s']:,.1f} blocks/s",
         f"{r['replay_tx_per_s']:,.0f} tx/s, {blocks} blocks, {replay_s:.2f} s"),
        ("proof build", f"{r['proof_build_us']:.1f} µs", "State.proof of an account, median"),
        ("proof verify", f"{r['proof_verify_us']:.1f} µs", "verify_proof, median"),
    ]
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    sys.exit(bench.main(run, sys.argv[1:]))
