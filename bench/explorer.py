"""The explorer benchmark: page time on a big chain, and whether it grows with the chain.

Two chains are built with the real modules and the real SQLite store, one ten times the other: the
full one has 100,000 transactions (Datanet contributions of 1,000 records each, votes, receipts and,
for the rest, transfers), 100,000 records and 10,000 paid receipts, each carrying an attribution
record stored as a blob (`--quick`: a tenth of that, against a hundredth). The explorer is served
over each in-process on loopback (the node's app with the pages added; its history index replays
the chain once at start, reported as `index_s`), and every page type (home, block list a page in,
block, transaction, account, Datanet with a records cursor in the middle, record, model, answer) is
fetched 200 times, the requests of all types interleaved. Server time is measured around the app
(an ASGI wrapper), so the client's own time is not counted.

Targets: `p95_ms` <= 50 on the full chain, `p95_ms_at_10x_size_ratio` (p95 full / p95 a tenth) <= 1.5.

Run it as `ailedger bench explorer [--quick]` or `python -m bench.explorer [--quick]`; the last line
of stdout is one JSON object with the figures.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table
from starlette.types import ASGIApp, Receive, Scope, Send

import bench
from ailedger.api.app import create_app
from ailedger.api.server import run_server_in_thread
from ailedger.billing import payloads as bp
from ailedger.chain.accounts import AMOUNT_CODEC as STAKE_CODEC
from ailedger.chain.accounts import STAKE, TRANSFER, TRANSFER_CODEC, Amount, Transfer
from ailedger.chain.blobstore import BlobStore
from ailedger.chain.genesis import Allocation, Genesis
from ailedger.chain.node import Node
from ailedger.chain.tx import decode_tx
from ailedger.core.address import encode_address
from ailedger.core.hashing import canonical_json, sha256
from ailedger.core.keys import KeyPair
from ailedger.core.merkle import merkle_root
from ailedger.datanet import payloads as dp
from ailedger.datanet.state import FeeSplit
from ailedger.models import payloads as mp
from ailedger.modules import default_runtime
from ailedger.web.app import add_explorer
from bench.settlement import CHAIN_ID, Chain, codec, kp

GENESIS_MS = 1_700_000_000_000
RECORDS_PER_TX = 1_000
PER_RECEIPT_TX = 100
CONTRIBUTORS = 20
TRANSFERS_PER_BLOCK = 2_000
FETCHES = 200
TARGET_P95_MS, TARGET_RATIO = 50.0, 1.5
WEIGHTS, CONFIG, ADAPTER = b"\x11" * 32, b"\x12" * 32, b"\x13" * 32

_err = Console(stderr=True)


class ServerTimer:
    """ASGI wrapper noting how long the app took for each request (path kind -> milliseconds)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.ms: dict[str, list[float]] = {}
        self.kind = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = time.perf_counter()
        await self.app(scope, receive, send)
        if scope["type"] == "http" and self.kind:
            self.ms.setdefault(self.kind, []).append((time.perf_counter() - t0) * 1000)


def attribution_blob(records: list[bytes], contributors: list[KeyPair]) -> tuple[bytes, list[bp.ReceiptShare]]:
    """A small attribution record (three records paid) and the receipt shares it implies."""
    paid = sorted(records[:3])
    bps = [5_000, 3_000, 2_000]
    doc = {"adapter_hash": ADAPTER.hex(), "answer_tokens": [5, 6, 7, 8], "prompt_tokens": [1, 2, 3],
           "bundle_root": "00" * 32, "method": "bench", "rule": {"floor": 0.5, "top_k": 16, "span_weight": 1.0},
           "records": [{"record": r.hex(), "contributor": encode_address(contributors[0].address), "influence": 1,
                        "span": 0, "score": 1, "bp": b, "paid": True} for r, b in zip(paid, bps, strict=True)],
           "shares": [{"contributor": encode_address(contributors[0].address), "bp": 10_000}],
           "spans": [{"start": 1, "end": 3, "records": [paid[0].hex()], "record_count": 1, "count": 1}]}
    return canonical_json(doc), [bp.ReceiptShare(r, b) for r, b in zip(paid, bps, strict=True)]


def build(root: Path, n_txs: int, n_records: int, n_receipts: int) -> dict[str, Any]:
    """A chain of about `n_txs` transactions; returns what the fetches ask for."""
    runtime = default_runtime()
    proposer, curator, builder, validator, caller, provider = kp(1), kp(2), kp(3), kp(4), kp(5), kp(6)
    contributors = [kp(100 + i) for i in range(CONTRIBUTORS)]
    senders = [kp(1_000 + i) for i in range(50)]
    alloc = [Allocation(k.address, 10**15) for k in (curator, builder, validator, caller, provider, *contributors,
                                                     *senders)]
    genesis = Genesis(CHAIN_ID, GENESIS_MS, proposer.public_key, alloc,
                      {"billing_max_receipts_per_tx": PER_RECEIPT_TX, "datanet_min_window_blocks": 1,
                       "max_block_txs": 5_000, "datanet_max_records_per_tx": RECORDS_PER_TX})
    chain = Chain(root / "data", runtime, genesis, proposer)
    create = dp.CreateDatanet("facts", "facts", "d", bytes(32), "CC-BY-4.0", 10_000, 1, 1,
                              FeeSplit(7_000, 1_000, 1_000, 1_000), 8_000, 0)
    chain.block([chain.tx(curator, dp.CREATE, codec(runtime, dp.CREATE, create)),
                 chain.tx(validator, STAKE, STAKE_CODEC.encode(Amount(10**9)))])
    chain.block([chain.tx(validator, dp.REGISTER_VALIDATOR, codec(runtime, dp.REGISTER_VALIDATOR, dp.Named("facts")))])
    records = [sha256(i.to_bytes(8, "big")) for i in range(n_records)]
    batches = [records[i:i + RECORDS_PER_TX] for i in range(0, n_records, RECORDS_PER_TX)]
    for start in range(0, len(batches), 50):
        chain.block([chain.tx(contributors[(start + j) % CONTRIBUTORS], dp.CONTRIBUTE, codec(
            runtime, dp.CONTRIBUTE, dp.Contribute("facts", b, merkle_root(b)))) for j, b in enumerate(
            batches[start:start + 50])])
        chain.block([chain.tx(validator, dp.VOTE, codec(runtime, dp.VOTE, dp.VoteBatch(
            "facts", [dp.Ballot(r, 1) for r in b]))) for b in batches[start:start + 50]])
    chain.block([])
    chain.block([chain.tx(curator, dp.SNAPSHOT, codec(runtime, dp.SNAPSHOT, dp.Named("facts")))])
    base = mp.RegisterBase("base", WEIGHTS, CONFIG, "llama", 1, 1, "apache-2.0")
    pub = mp.PublishAdapter("legal", "base", ADAPTER, "facts", 1, b"\x14" * 32, b"\x15" * 32, 8, 1_000, bytes(32))
    key_hash = b"\xaa" * 32
    chain.block([chain.tx(curator, mp.REGISTER_BASE, codec(runtime, mp.REGISTER_BASE, base))])
    chain.block([chain.tx(builder, mp.PUBLISH_ADAPTER, codec(runtime, mp.PUBLISH_ADAPTER, pub)),
                 chain.tx(caller, bp.DEPOSIT, codec(runtime, bp.DEPOSIT, bp.Amount(10**14)))])
    chain.block([chain.tx(caller, bp.AUTHORIZE_KEY, codec(runtime, bp.AUTHORIZE_KEY, bp.AuthorizeKey(
        key_hash, provider.address, 10**14, 0)))])
    blob, shares = attribution_blob(records, contributors)
    blobs = BlobStore(root / "data" / "blobs")
    blobs.put_many([blob])
    blobs.close()
    receipt_ids = [sha256(b"receipt" + i.to_bytes(8, "big")) for i in range(n_receipts)]
    groups = [receipt_ids[i:i + PER_RECEIPT_TX] for i in range(0, n_receipts, PER_RECEIPT_TX)]
    for start in range(0, len(groups), 20):
        chain.block([chain.tx(provider, bp.SUBMIT_RECEIPTS, bp.SUBMIT_RECEIPTS_CODEC.encode(bp.SubmitReceipts([
            bp.Receipt(rid, key_hash, "legal", 1, WEIGHTS, ADAPTER, 20, 10, [], sha256(blob), shares)
            for rid in g]))) for g in groups[start:start + 20]])
    made = chain.store.height()
    txs_so_far = sum(len(chain.store.block(h).txs) for h in range(1, made + 1))
    rng = random.Random(11)
    remaining = max(0, n_txs - txs_so_far)
    total = txs_so_far + remaining
    transfers_from = chain.store.height() + 1  # the first block of transfers: the block and tx pages read it
    while remaining:
        count = min(TRANSFERS_PER_BLOCK, remaining)
        chain.block([chain.tx(senders[i % len(senders)], TRANSFER, TRANSFER_CODEC.encode(
            Transfer(senders[(i + 1 + rng.randrange(len(senders) - 1)) % len(senders)].address, 1 + i)))
            for i in range(count)])
        remaining -= count
    top = chain.store.height()
    mid = top // 2
    shown = min(transfers_from, top)
    some_tx = chain.store.block(shown).txs
    out = {"height": top, "txs": total,
           "tx": decode_tx(some_tx[len(some_tx) // 2]).id.hex(), "block": shown,
           "account": encode_address(senders[0].address), "record": records[n_records // 2].hex(),
           "receipt": receipt_ids[n_receipts // 2].hex(), "records_cursor": n_records // 2,
           "blocks_cursor": mid + 1}
    chain.store.close()
    return out


def pages(ids: dict[str, Any]) -> dict[str, str]:
    return {"home": "/", "blocks": f"/blocks?before={ids['blocks_cursor']}", "block": f"/blocks/{ids['block']}",
            "tx": f"/txs/{ids['tx']}", "account": f"/accounts/{ids['account']}",
            "datanet": f"/datanets/facts?after={ids['records_cursor']}",
            "record": f"/datanets/facts/records/{ids['record']}", "model": "/models/legal@1",
            "answer": f"/answers/{ids['receipt']}"}


def measure(root: Path, ids: dict[str, Any]) -> dict[str, Any]:
    node = Node(root / "data", default_runtime())
    try:
        app = create_app(node)
        t0 = time.perf_counter()
        add_explorer(app, node)
        index_s = time.perf_counter() - t0
        timer = ServerTimer(app)
        server = uvicorn.Server(uvicorn.Config(timer, log_level="warning", access_log=False, lifespan="off"))
        targets = pages(ids)
        with run_server_in_thread(server) as url, httpx.Client(base_url=url, timeout=30) as client:
            for kind, path in targets.items():  # warm up, and make sure every page answers 200
                resp = client.get(path)
                assert resp.status_code == 200, (kind, path, resp.status_code, resp.text[:300])
            for _ in range(FETCHES):
                for kind, path in targets.items():
                    timer.kind = kind
                    client.get(path)
            timer.kind = ""
    finally:
        node.close()
    every = sorted(x for v in timer.ms.values() for x in v)
    return {"index_s": round(index_s, 2), "p50_ms": round(statistics.median(every), 2),
            "p95_ms": round(every[int(len(every) * 0.95) - 1], 2),
            "p95_ms_by_page": {k: round(sorted(v)[int(len(v) * 0.95) - 1], 2) for k, v in timer.ms.items()}}


def run(quick: bool) -> dict[str, Any]:
    scale = 0.1 if quick else 1.0
    sizes = {"full": (int(100_000 * scale), int(100_000 * scale), int(10_000 * scale))}
    sizes["tenth"] = tuple(x // 10 for x in sizes["full"])  # type: ignore[assignment]
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="ailedger-bench-explorer-") as tmp:
        for name, (n_txs, n_records, n_receipts) in sizes.items():
            _err.print(f"[dim]{name}: building a chain of {n_txs:,} transactions, {n_records:,} records, "
                       f"{n_receipts:,} receipts…[/]")
            t0 = time.perf_counter()
            ids = build(Path(tmp) / name, n_txs, n_records, n_receipts)
            build_s = time.perf_counter() - t0
            _err.print(f"[dim]{name}: serving and fetching {len(pages(ids))} page types x {FETCHES}…[/]")
            figures[name] = {"txs": ids["txs"], "records": n_records, "receipts": n_receipts,
                             "height": ids["height"], "build_s": round(build_s, 1), **measure(Path(tmp) / name, ids)}
    full, tenth = figures["full"], figures["tenth"]
    result: dict[str, Any] = {
        "name": "explorer", "quick": quick, "fetches_per_page": FETCHES,
        "p50_ms": full["p50_ms"], "p95_ms": full["p95_ms"],
        "p95_ms_at_10x_size_ratio": round(full["p95_ms"] / tenth["p95_ms"], 2),
        "full": full, "tenth": tenth,
        "target_p95_ms": TARGET_P95_MS, "target_ratio": TARGET_RATIO,
    }
    print_table(result)
    return result


def print_table(r: dict[str, Any]) -> None:
    t = Table(title=f"explorer pages, server time over loopback ({r['fetches_per_page']} fetches per page type)")
    t.add_column("page")
    for size in ("full", "tenth"):
        t.add_column(f"p95 ms ({r[size]['txs']:,} txs)", justify="right")
    for page in r["full"]["p95_ms_by_page"]:
        t.add_row(page, *(f"{r[s]['p95_ms_by_page'][page]:.2f}" for s in ("full", "tenth")))
    t.add_row("all", f"{r['full']['p95_ms']:.2f}", f"{r['tenth']['p95_ms']:.2f}")
    Console(stderr=True).print(t)
    _err.print(json.dumps({k: r[k] for k in ("p50_ms", "p95_ms", "p95_ms_at_10x_size_ratio")}))


if __name__ == "__main__":
    sys.exit(bench.main(run, sys.argv[1:]))
