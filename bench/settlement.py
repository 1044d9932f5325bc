"""The settlement benchmark: how fast a block's receipts are paid out, and whether every micro-unit balances.

The chain is built with the real modules and the real SQLite store: 1,000 contributors each get one record
accepted in a Datanet (contribute, vote, window end), an adapter is published on its snapshot, callers deposit
and bind keys, and providers submit receipts through billing's `submit_receipts`, each
attributing its data pool to 10 records of distinct contributors with random basis points; 10 of the
records were voted down (a receipt naming one pays the others) and one receipt in 50 carries no
attribution (its data part goes back to the caller). Receipts are
settled in the end_block of the block that stored them; the clock runs only around the settlement module's
end_block (reading the block's row blocks, planning with NumPy, writing earnings and lines), and the block's
state commit and SQLite write are reported beside it.

Baseline: the straightforward loop over the same receipts, one at a time with Python ints (one state read
and decode per receipt, cached model and record look-ups, settlement/reference.py's rules), on a subset.

Run it as `ailedger bench settlement [--quick]` or `python -m bench.settlement [--quick]`; the last line of
stdout is one JSON object with the figures.
"""

from __future__ import annotations

import random
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console

import bench
from ailedger.billing import payloads as bp
from ailedger.billing import state as billing
from ailedger.chain.accounts import AMOUNT_CODEC as STAKE_CODEC
from ailedger.chain.accounts import STAKE, Amount
from ailedger.chain.block import BlockHeader
from ailedger.chain.genesis import Allocation, Genesis
from ailedger.chain.module import BlockContext
from ailedger.chain.runtime import Runtime
from ailedger.chain.state import Journal, State
from ailedger.chain.store import Store
from ailedger.chain.tx import Tx, decode_tx, sign_tx
from ailedger.core.keys import KeyPair
from ailedger.core.merkle import merkle_root
from ailedger.datanet import payloads as dp
from ailedger.datanet import state as dn
from ailedger.datanet.state import FeeSplit
from ailedger.models import payloads as mp
from ailedger.modules import default_runtime
from ailedger.settlement import views
from ailedger.settlement.plan import resolve_model
from ailedger.settlement.reference import settle_receipt

CHAIN_ID = "settlement-bench"
FEE = 1_000
GENESIS_MS = 1_700_000_000_000
CONTRIBUTORS = 1_000
SHARES = 10
PER_TX = 110  # a transaction is at most 64 KiB; a receipt with 10 shares is about 540 bytes
TXS_PER_BLOCK = 1_000  # 110,000 receipts a block
PROVIDERS, CALLERS = 4, 8
TARGET = 200_000
BASELINE_N = 20_000
REJECTED = 10  # records voted down: about one receipt in ten names one of them
UNATTRIBUTED_EVERY = 50  # one receipt in 50 carries no attribution: its data part is refunded (rule 3)
WEIGHTS, CONFIG, ADAPTER = b"\x11" * 32, b"\x12" * 32, b"\x13" * 32

_err = Console(stderr=True)


def kp(i: int) -> KeyPair:
    return KeyPair.from_seed(i.to_bytes(32, "big"))


class Chain:
    """A store and its state, built block by block with the proposer's key."""

    def __init__(self, data_dir: Path, runtime: Runtime, genesis: Genesis, proposer: KeyPair) -> None:
        self.runtime, self.proposer = runtime, proposer
        self.store = Store.create(data_dir, genesis, runtime)
        self.state: State = self.store.load_state()
        self.parent: BlockHeader = self.store.head()
        self.nonces: dict[bytes, int] = defaultdict(int)
        self.commit_s = 0.0

    def tx(self, key: KeyPair, tx_type: int, payload: bytes) -> Tx:
        n = self.nonces[key.address]
        self.nonces[key.address] += 1
        return decode_tx(sign_tx(key, CHAIN_ID, n, FEE, tx_type, payload))

    def block(self, txs: list[Tx]) -> None:
        built = self.runtime.build_block(self.state, self.parent, self.parent.timestamp_ms + 1_000, self.proposer,
                                         txs)
        assert built.block is not None and not built.rejected, built.rejected[:1]
        failed = [r.code for r in built.receipts if r.code]
        assert not failed, failed[:5]
        t1 = time.perf_counter()
        self.store.commit_block(built)
        self.commit_s += time.perf_counter() - t1
        self.parent = built.block.header


def codec(runtime: Runtime, tx_type: int, payload: Any) -> bytes:
    return runtime.tx_types[tx_type].codec.encode(payload)


def share_pool(records: list[bytes], rng: random.Random, size: int) -> list[list[bp.ReceiptShare]]:
    """`size` attributions: 10 distinct records (so 10 distinct contributors), bp summing to 10,000."""
    pool = []
    for _ in range(size):
        recs = sorted(rng.sample(records, SHARES))
        cuts = sorted(rng.sample(range(1, 10_000), SHARES - 1))
        bps = [hi - lo for lo, hi in zip([0, *cuts], [*cuts, 10_000], strict=True)]
        pool.append([bp.ReceiptShare(r, b) for r, b in zip(recs, bps, strict=True)])
    return pool


def setup(chain: Chain, curator: KeyPair, validators: list[KeyPair], contributors: list[KeyPair],
          builder: KeyPair, callers: list[KeyPair], providers: list[KeyPair]) -> list[bytes]:
    rt = chain.runtime
    records = [i.to_bytes(4, "big") * 8 for i in range(1, CONTRIBUTORS + 1)]
    create = dp.CreateDatanet("facts", "facts", "d", bytes(32), "CC-BY-4.0", 10_000, 1, 1,
                              FeeSplit(7_000, 1_000, 1_000, 1_000), 8_000, 0)
    chain.block([chain.tx(curator, dp.CREATE, codec(rt, dp.CREATE, create))]
                + [chain.tx(v, STAKE, STAKE_CODEC.encode(Amount(10**9))) for v in validators])
    chain.block([chain.tx(v, dp.REGISTER_VALIDATOR, codec(rt, dp.REGISTER_VALIDATOR, dp.Named("facts")))
                 for v in validators])
    chain.block([chain.tx(c, dp.CONTRIBUTE, codec(rt, dp.CONTRIBUTE, dp.Contribute("facts", [r], merkle_root([r]))))
                 for c, r in zip(contributors, records, strict=True)])
    # the last REJECTED records are voted down: receipts that name them pay the other records (rule 2)
    ballots = dp.VoteBatch("facts", [dp.Ballot(r, int(i < CONTRIBUTORS - REJECTED)) for i, r in enumerate(records)])
    chain.block([chain.tx(validators[0], dp.VOTE, codec(rt, dp.VOTE, ballots))])
    chain.block([])
    chain.block([chain.tx(curator, dp.SNAPSHOT, codec(rt, dp.SNAPSHOT, dp.Named("facts")))])
    base = mp.RegisterBase("base", WEIGHTS, CONFIG, "llama", 1, 1, "apache-2.0")
    pub = mp.PublishAdapter("legal", "base", ADAPTER, "facts", 1, b"\x14" * 32, b"\x15" * 32, 8, 1_000, bytes(32))
    chain.block([chain.tx(curator, mp.REGISTER_BASE, codec(rt, mp.REGISTER_BASE, base))])
    chain.block([chain.tx(builder, mp.PUBLISH_ADAPTER, codec(rt, mp.PUBLISH_ADAPTER, pub))]
                + [chain.tx(c, bp.DEPOSIT, codec(rt, bp.DEPOSIT, bp.Amount(10**14))) for c in callers])
    chain.block([chain.tx(c, bp.AUTHORIZE_KEY, codec(rt, bp.AUTHORIZE_KEY, bp.AuthorizeKey(
        key_hash(i, j), p.address, 10**14, 0))) for i, c in enumerate(callers) for j, p in enumerate(providers)])
    assert dn.get_counters(chain.state, "facts").accepted == CONTRIBUTORS - REJECTED
    return records


def key_hash(caller: int, provider: int) -> bytes:
    return bytes([0xAA, caller, provider]) + bytes(29)


def receipt_txs(chain: Chain, providers: list[KeyPair], pool: list[list[bp.ReceiptShare]], start: int,
                count: int, total: int, rng: random.Random) -> tuple[list[Tx], int]:
    """`count` transactions of PER_TX receipts (fewer in the last, to stop at `total`); with their fees."""
    txs, fees = [], 0
    for t in range(count):
        pi = (start + t) % PROVIDERS
        receipts = []
        for n in range((start + t) * PER_TX, min(total, (start + t + 1) * PER_TX)):
            tokens = rng.randrange(50, 5_000)
            fees += (tokens * 1_000 + 999) // 1_000
            shares = [] if n % UNATTRIBUTED_EVERY == 0 else pool[n % len(pool)]
            receipts.append(bp.Receipt((n + 1).to_bytes(8, "big") * 4, key_hash(n % CALLERS, pi), "legal", 1, WEIGHTS,
                                       ADAPTER, tokens // 2, tokens - tokens // 2, [],
                                       b"\x99" * 32 if shares else bytes(32), shares))
        payload = bp.SUBMIT_RECEIPTS_CODEC.encode(bp.SubmitReceipts(receipts))
        txs.append(chain.tx(providers[pi], bp.SUBMIT_RECEIPTS, payload))
    return txs, fees


def baseline(state: State, first: int, n: int) -> float:
    """Receipts per second of the per-receipt loop (one state read and decode each, Python ints)."""
    models: dict[tuple[str, int], Any] = {}
    status: dict[bytes, tuple[bool, bytes]] = {}
    credits: dict[bytes, int] = defaultdict(int)
    t0 = time.perf_counter()
    for seq in range(first, first + n):
        r = billing.get_receipt(state, state.get(billing.unsettled_key(seq)) or b"")
        assert r is not None
        info = models.get((r.model, r.version)) or models.setdefault((r.model, r.version),
                                                                      resolve_model(state, r.model, r.version))
        shares = [(x.record, x.bp) for x in r.shares]
        for rec, _ in shares:
            if rec not in status:
                rs = dn.get_record_state(state, info.datanet, rec)
                status[rec] = (rs is not None and rs.status == dn.Status.ACCEPTED,
                               rs.contributor if rs else bytes(20))
        p = settle_receipt(r.charged, info.split, shares, {rec for rec, _ in shares if status[rec][0]})
        for rec, amount in p.data:
            credits[status[rec][1]] += amount
        credits[info.owner] += p.model_owner
        credits[r.provider] += p.compute
        credits[b"validators"] += p.validators
        credits[r.caller] += p.refund
    return n / (time.perf_counter() - t0)


def run(quick: bool) -> dict[str, Any]:
    n_receipts = 100_000 if quick else 1_000_000
    n_txs = -(-n_receipts // PER_TX)
    runtime = default_runtime()
    module = next(m for m in runtime.modules if m.name == "settlement")
    settle_s: list[float] = []
    real_end_block = module.end_block

    def timed_end_block(state: Journal, ctx: BlockContext) -> None:
        t0 = time.perf_counter()
        real_end_block(state, ctx)
        settle_s.append(time.perf_counter() - t0)

    module.end_block = timed_end_block  # type: ignore[method-assign]
    proposer, curator, builder = kp(1), kp(2), kp(3)
    validators = [kp(10 + i) for i in range(4)]
    providers = [kp(20 + i) for i in range(PROVIDERS)]
    callers = [kp(30 + i) for i in range(CALLERS)]
    contributors = [kp(1_000 + i) for i in range(CONTRIBUTORS)]
    alloc = [Allocation(k.address, 10**15) for k in (curator, builder, *validators, *providers, *callers)]
    alloc += [Allocation(k.address, 10**6) for k in contributors]
    genesis = Genesis(CHAIN_ID, GENESIS_MS, proposer.public_key, alloc,
                      {"billing_max_receipts_per_tx": PER_TX, "datanet_min_window_blocks": 1,
                       "max_block_txs": 2_000})
    rng = random.Random(6)
    with tempfile.TemporaryDirectory(prefix="ailedger-bench-settle-") as tmp:
        chain = Chain(Path(tmp) / "chain", runtime, genesis, proposer)
        _err.print(f"[dim]setting up: {CONTRIBUTORS:,} contributors' records accepted, an adapter published…[/]")
        records = setup(chain, curator, validators, contributors, builder, callers, providers)
        pool = share_pool(records, rng, 4_096)
        prepaid0 = sum(billing.get_account(chain.state, c.address).prepaid for c in callers)
        settle_s.clear()
        chain.commit_s = 0.0
        first_seq = billing.get_u64(chain.state, billing.RECEIPT_COUNT_KEY)
        fees = 0
        wall0 = time.perf_counter()
        for start in range(0, n_txs, TXS_PER_BLOCK):
            count = min(TXS_PER_BLOCK, n_txs - start)
            _err.print(f"[dim]block of {min(count * PER_TX, n_receipts - start * PER_TX):,} receipts "
                       f"(submit_receipts x {count}), {start * PER_TX:,} stored so far…[/]")
            txs, f = receipt_txs(chain, providers, pool, start, count, n_receipts, rng)
            fees += f
            chain.block(txs)
        wall = time.perf_counter() - wall0
        settle_total = sum(settle_s)
        state = chain.state
        check = views.conservation(state)
        prepaid1 = sum(billing.get_account(state, c.address).prepaid for c in callers)
        conserved = (check["conserved"] and billing.get_u64(state, billing.ESCROW_KEY) == 0
                     and check["settled"] == fees == prepaid0 - prepaid1 + check["refunded"])
        _err.print(f"[dim]baseline: the per-receipt loop over {min(BASELINE_N, n_receipts):,} receipts…[/]")
        base = baseline(state, first_seq, min(BASELINE_N, n_receipts))
        chain.store.close()
    per_s = n_receipts / settle_total
    result: dict[str, Any] = {
        "name": "settlement",
        "receipts": n_receipts,
        "shares_per_receipt": SHARES,
        "contributors": CONTRIBUTORS,
        "blocks": len(settle_s),
        "settle_s": round(settle_total, 3),
        "receipts_per_s": round(per_s, 1),
        "baseline_receipts_per_s": round(base, 1),
        "speedup_vs_baseline": round(per_s / base, 2),
        "commit_s": round(chain.commit_s, 3),
        "total_wall_s": round(wall, 2),
        "settled": check["settled"],
        "earned": check["earned"],
        "refunded": check["refunded"],
        "conserved": bool(conserved),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "target_receipts_per_s": TARGET,
    }
    print_table(result)
    return result


def print_table(r: dict[str, Any]) -> None:
    title = (f"settlement benchmark: {r['receipts']:,} receipts x {r['shares_per_receipt']} shares, "
             f"{r['contributors']:,} contributors")
    met = r["receipts_per_s"] >= r["target_receipts_per_s"]
    rows = [
        ("settled", f"[{'green' if met else 'red'}]{r['receipts_per_s']:,.0f} receipts/s[/]",
         f"settlement end_block only, {r['blocks']} blocks, {r['settle_s']:.2f} s; target ≥ {TARGET:,}"),
        ("baseline", f"{r['baseline_receipts_per_s']:,.0f} receipts/s",
         "per-receipt loop, one state read each, Python ints (no writes)"),
        ("speed-up", f"{r['speedup_vs_baseline']:.1f}x", "settled / baseline"),
        ("store commit", f"{r['commit_s']:.2f} s", "SQLite write of those blocks (all modules' rows)"),
        ("whole run", f"{r['total_wall_s']:.1f} s", "signing, billing, Merkle state, settlement, SQLite"),
        ("conserved", "yes" if r["conserved"] else "[red]NO[/]",
         f"escrow out {r['settled']:,} = earned + held + refunded + pooled; escrow 0; prepaid drop matches"),
        ("peak RSS", f"{r['peak_rss_mb']:,.0f} MB", "the whole process"),
    ]
    bench.print_measures(title, rows)


if __name__ == "__main__":
    sys.exit(bench.main(run, sys.argv[1:]))
