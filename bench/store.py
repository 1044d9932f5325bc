"""The store benchmark: the ledger benchmark's applied transfers per second on SQLite and on PostgreSQL.

Why the same workload and code path as `bench ledger`: the question is what moving the chain's rows
into a server database costs a node, so only the store changes. Each block of 1,000 pre-signed
transfers goes wire bytes -> `decode_tx` -> `Runtime.build_block` -> `Store.commit_block`, durably
(SQLite WAL with synchronous=FULL; PostgreSQL with its default fsync and synchronous_commit). The
PostgreSQL server is a real one started here on a Unix socket (chain/pg_local.py) and stopped at the
end; its processes may run on the other core while this process is pinned to one.

Noise: the two stores run alternately, round after round, and each keeps its best round, so a busy
neighbour in one round does not decide the ratio. `postgres_vs_sqlite` is the figure that counts
(target >= 0.5).

`replica_verify_tx_per_s`: a read replica (`node run --follow`) re-executes every block it
downloads; here a fresh SQLite replica applies the primary's blocks with `follower.apply_blocks`
(signatures, every root, commit), without the HTTP transfer.

Run it as `ailedger bench store [--quick]`; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

import bench
from ailedger.chain.follower import apply_blocks
from ailedger.chain.node import Node
from ailedger.chain.pg_local import PgServer
from ailedger.chain.store import Store
from ailedger.modules import default_runtime
from bench.ledger import ACCOUNTS, make_workload, measure_apply, pin_to_one_core

FULL_TX, QUICK_TX = 20_000, 4_000
FULL_ROUNDS, QUICK_ROUNDS = 3, 1
TARGET = 0.5

_err = Console(stderr=True)


def measure_replica(primary_dir: Path, replica_dir: Path) -> tuple[float, int]:
    """Seconds for a fresh replica to verify and commit every block of the primary; and the tx count."""
    runtime = default_runtime()
    primary = Store.open(primary_dir)
    Store.create(replica_dir, primary.genesis, runtime).close()
    replica = Node(replica_dir, runtime, None)
    blocks = list(primary.blocks(1))
    primary.close()
    t0 = time.perf_counter()
    applied = apply_blocks(replica, blocks)  # what `node run --follow` runs on each downloaded batch
    elapsed = time.perf_counter() - t0
    if replica.store.head().hash != blocks[-1].header.hash:
        raise RuntimeError("the replica's head differs from the primary's")
    replica.close()
    return elapsed, applied.txs


def run(quick: bool) -> dict[str, Any]:
    cpu = pin_to_one_core()
    n_tx = QUICK_TX if quick else FULL_TX
    rounds = QUICK_ROUNDS if quick else FULL_ROUNDS
    runtime = default_runtime()
    _err.print(f"[dim]pinned to cpu {cpu}; signing {n_tx:,} transfers from {ACCOUNTS:,} accounts…[/]")
    work = make_workload(n_tx, ACCOUNTS)
    _err.print("[dim]starting a PostgreSQL 15 server on a Unix socket…[/]")
    server = PgServer()
    best = {"sqlite": float("inf"), "postgres": float("inf")}
    replica_s = float("inf")
    replica_txs = 0
    try:
        for r in range(rounds):
            with tempfile.TemporaryDirectory(prefix="ailedger-bench-store-") as tmp:
                _err.print(f"[dim]round {r + 1}/{rounds}: SQLite, then PostgreSQL…[/]")
                _, lite_s, _, _ = measure_apply(Path(tmp) / "lite", runtime, work)
                _, pg_s, _, _ = measure_apply(Path(tmp) / "pg", runtime, work, server.fresh_url())
                best["sqlite"] = min(best["sqlite"], lite_s)
                best["postgres"] = min(best["postgres"], pg_s)
                _err.print(f"[dim]round {r + 1}: a replica verifies the SQLite chain…[/]")
                s, replica_txs = measure_replica(Path(tmp) / "lite", Path(tmp) / "replica")
                replica_s = min(replica_s, s)
    finally:
        server.close()
    lite = n_tx / best["sqlite"]
    pg = n_tx / best["postgres"]
    result: dict[str, Any] = {
        "name": "store",
        "sqlite_tx_per_s": round(lite, 1),
        "postgres_tx_per_s": round(pg, 1),
        "postgres_vs_sqlite": round(pg / lite, 4),
        "replica_verify_tx_per_s": round(replica_txs / replica_s, 1),
        "target_postgres_vs_sqlite": TARGET,
        "met": pg / lite >= TARGET,
        "tx": n_tx,
        "rounds": rounds,
    }
    bench.print_measures(f"store benchmark: {n_tx:,} transfers in blocks of 1,000, one core, best of {rounds}", [
        ("SQLite", f"{lite:,.0f} tx/s", "decode+build+commit, WAL, synchronous=FULL"),
        ("PostgreSQL 15", f"{pg:,.0f} tx/s", "same, one transaction per block, Unix socket"),
        ("postgres_vs_sqlite", f"[{'green' if result['met'] else 'red'}]{pg / lite:.3f}[/]", f"target ≥ {TARGET}"),
        ("replica verify", f"{result['replica_verify_tx_per_s']:,.0f} tx/s", "Node.apply_block: re-execute + commit"),
    ])
    return result


if __name__ == "__main__":
    sys.exit(bench.main(run, sys.argv[1:]))
