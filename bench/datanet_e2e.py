"""Stage 2 of the Datanet benchmark: a contribution file through the real pipeline into the ledger.

Kept apart from bench/datanet.py because it drives the user-facing path (the CLI's embedded
backend, `datanet.pipeline.contribute`): read the JSONL file, run every gate, store the passing
records as blobs, sign `contribute` transactions and seal them into blocks of an embedded node.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ailedger.chain.genesis import Allocation, Genesis
from ailedger.chain.nodekey import write_node_key
from ailedger.chain.store import Store
from ailedger.chain.tx import sign_tx
from ailedger.cli.backend import Embedded
from ailedger.core.keys import KeyPair
from ailedger.datanet import payloads
from ailedger.datanet.gates.offtopic import OffTopicGate
from ailedger.datanet.gates.records import canonical_record
from ailedger.datanet.gates.runner import GateConfig
from ailedger.datanet.pipeline import contribute
from ailedger.datanet.state import FeeSplit
from ailedger.datanet.synth import SCHEMA, generate
from ailedger.modules import default_runtime

CHAIN_ID = "ailedger-bench-dn"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def end_to_end(n: int, tmp: Path, offtopic: OffTopicGate) -> dict[str, float]:
    """Contribute `n` synthetic records from one file; records/s over the whole pipeline."""
    path = tmp / "records.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for s in generate(n, seed=7):
            f.write(json.dumps(s.record, ensure_ascii=False) + "\n")
    proposer = KeyPair.from_seed(b"bench-dn/proposer".ljust(32, b"\0"))
    contributor = KeyPair.from_seed(b"bench-dn/contributor".ljust(32, b"\0"))
    data = tmp / "chain"
    genesis = Genesis(CHAIN_ID, 1_700_000_000_000, proposer.public_key, [Allocation(contributor.address, 10**15)])
    Store.create(data, genesis, default_runtime()).close()
    write_node_key(data, proposer)
    backend = Embedded(data, write=True)
    try:
        schema_hash = bytes.fromhex(backend.put_blobs([canonical_record(SCHEMA)])[0])
        create = payloads.CreateDatanet("cooking", "home cooking tips", "benchmark Datanet", schema_hash, "CC-BY-4.0",
                                        10_000, 1, 100, FeeSplit(7_000, 1_500, 1_000, 500))
        raw = sign_tx(contributor, CHAIN_ID, 0, 1_000, payloads.CREATE, payloads.CREATE_CODEC.encode(create))
        backend.wait_for_tx(backend.submit(raw)["tx_id"], 10)
        samples: list[tuple[int, float]] = []

        def progress(stage: str, done: int, total: int | None) -> None:
            samples.append((done, rss_mb()))

        t0 = time.perf_counter()
        summary = contribute(path, "cooking", contributor, backend, gate_config=GateConfig(schema=SCHEMA),
                             progress=progress, offtopic=offtopic)
        elapsed = time.perf_counter() - t0
        height = backend.status()["height"]
    finally:
        backend.close()
    early = [r for d, r in samples if d >= n // 5] or [0.0]
    return {"records_per_s": n / elapsed, "e2e_seconds": elapsed, "staked": summary.staked,
            "blocks": height, "rss_mb_at_20pct": early[0], "rss_mb_end": samples[-1][1] if samples else 0.0}
