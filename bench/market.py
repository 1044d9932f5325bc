"""The compute-market benchmark: 100 providers and 10,000 orders through the real state machine, against transfers.

A chain with every default module is built in memory with `Runtime.build_block` (the proposer's path: the
signature check, the fee and nonce, the handler, every module's end_block, the Merkle state commit).
100 providers register and offer capacity: one big operator runs 40 of them (declared under one operator),
twenty small operators run 3 each. Each block posts ORDERS_PER_BLOCK orders (half CPU, half H100; a
one-block bid window, a DURATION-block lease); each order draws BIDS bids, one always from the big
operator at the lowest price, so the concentration cap decides who wins. Each lease's provider reports its
work once, at the lease's last block (which pays it), and spot checks drawn by the ledger are answered by
their verifiers in the next block. After every block the top operator share of each resource class is
measured from the live counters: `max_operator_share` is the maximum over every block of the run and every
class, the blocks after the last bid window included, when the remaining leases run out with no new demand.
The cap looks ahead over the scheduled ends of the class's leases when a lease opens (docs/market.md
"Concentration"), and no lease here ends early (every report is on time, every check passes), so it must stay
within `cap` at every block; `max_operator_share_drain` is the same maximum over the drain blocks alone, as
detail.

The yardstick: as many plain transfers, signed the same way, in blocks of the same size. Both are timed
around `build_block` only (signing happens beforehand). `market_tx_vs_transfer` is market transactions
applied per second over transfers applied per second; `orders_cleared_per_s` counts orders whose window
closed (to a lease or to expiry) per second of market block building.

Run it as `ailedger bench market [--quick]` (2,000 orders) or `python -m bench.market [--quick]`; the
last line of stdout is one JSON object with the figures.
"""

from __future__ import annotations

import resource
import sys
from typing import Any

from rich.console import Console

import bench
from ailedger.chain.accounts import TRANSFER, TRANSFER_CODEC, Transfer
from ailedger.chain.genesis import Allocation, Genesis
from ailedger.chain.tx import Tx
from ailedger.core.keys import KeyPair
from ailedger.market import payloads as p
from ailedger.market import views
from ailedger.market.book import CheckStatus, OrderStatus, count
from ailedger.market.resources import Resources
from ailedger.market.state import Kind
from ailedger.modules import default_runtime
from bench.governance import CHAIN_ID, GENESIS_MS, Chain, kp, supply

PROVIDERS = 100
BIG = 40  # identities of the big operator
SMALL_OPS = 20  # small operators of 3 identities each
ORDERS_PER_BLOCK = 100
BIDS = 4
DURATION = 10
BOND = 10**9
CAP_BPS = 2_500
TARGET = 0.5
OFFER = Resources(64, 256, "h100", 8, "eu")
NEEDS = [Resources(4, 16, "", 0, ""), Resources(8, 64, "h100", 1, "")]

_err = Console(stderr=True)


def encode(tx_type: int, payload: Any) -> bytes:
    return bytes(p_codec(tx_type).encode(payload))


def p_codec(tx_type: int) -> Any:
    return {p.REGISTER_PROVIDER: p.REGISTER_PROVIDER_CODEC, p.POST_OFFER: p.POST_OFFER_CODEC,
            p.POST_ORDER: p.POST_ORDER_CODEC, p.BID: p.BID_CODEC, p.REPORT_WORK: p.REPORT_WORK_CODEC,
            p.CHECK_RESULT: p.CHECK_RESULT_CODEC}[tx_type]


class Market:
    """The driver: which transactions each block carries, and what it measures after each block."""

    def __init__(self, chain: Chain, providers: list[KeyPair], consumers: list[KeyPair]) -> None:
        self.chain, self.providers, self.consumers = chain, providers, consumers
        self.by_address = {k.address: k for k in providers}
        self.reports_due: dict[int, list[int]] = {}  # height -> lease ids to report in that block
        self.seen_leases = 0
        self.market_txs = 0
        self.market_s = 0.0
        self.block_sizes: list[int] = []
        self.max_share_bps = 0  # over every block of the run
        self.drain_share_bps = 0  # detail: after the last window, while the remaining leases run out

    def orders_block(self, first_order: int, n: int, salt: int) -> list[Tx]:
        c = self.chain
        txs = []
        for i in range(n):
            oid = first_order + i
            needs = NEEDS[oid % 2]
            order = p.PostOrder(Kind.TRAIN, oid.to_bytes(32, "big"), needs, p.Unit.BLOCK, 100, 100 * DURATION, 1,
                                DURATION)
            txs.append(c.tx(self.consumers[oid % len(self.consumers)], p.POST_ORDER, encode(p.POST_ORDER, order)))
        for i in range(n):  # bids go in the same block, after every order
            oid = first_order + i
            bidders = [self.providers[(oid * 7 + salt) % BIG]]
            bidders += [self.providers[BIG + (oid * 13 + j * 17 + salt) % (PROVIDERS - BIG)] for j in range(BIDS - 1)]
            for j, k in enumerate(dict.fromkeys(bidders)):
                price = 10 if j == 0 else 20 + (oid + j * 5) % 30
                txs.append(c.tx(k, p.BID, encode(p.BID, p.Bid(oid, price))))
        return txs

    def work_block(self, height: int) -> list[Tx]:
        """Reports due in block `height`, and answers to the checks pending now (all pass: honest providers)."""
        c, txs = self.chain, []
        for lid in self.reports_due.pop(height, []):
            lease = views.get_lease(c.state, lid)
            assert lease is not None
            txs.append(c.tx(self.by_address[lease.provider], p.REPORT_WORK,
                            encode(p.REPORT_WORK, p.ReportWork(lid, lid.to_bytes(32, "big"), 0))))
        for check in self.pending_checks():
            txs.append(c.tx(self.by_address[check.verifier], p.CHECK_RESULT,
                            encode(p.CHECK_RESULT, p.CheckResult(check.id, 1, check.digest))))
        return txs

    def pending_checks(self) -> list[Any]:
        return views.checks(self.chain.state, CheckStatus.PENDING, None)

    def step(self, txs: list[Tx], draining: bool) -> None:
        self.market_s += self.chain.block(txs)
        self.market_txs += len(txs)
        self.block_sizes.append(len(txs))
        state, height = self.chain.state, self.chain.parent.height
        n = count(state, b"mkt/ln")
        for lid in range(self.seen_leases + 1, n + 1):
            lease = views.get_lease(state, lid)
            assert lease is not None
            self.reports_due.setdefault(lease.end, []).append(lid)
        self.seen_leases = n
        for cls in views.classes(state):
            share = views.share_now(state, cls, height).top_share_bps
            self.max_share_bps = max(self.max_share_bps, share)
            if draining:
                self.drain_share_bps = max(self.drain_share_bps, share)


def run(quick: bool, orders: int | None = None) -> dict[str, Any]:
    """The benchmark; `orders` overrides the count (the tests run a few hundred)."""
    n_orders = orders or (2_000 if quick else 10_000)
    runtime = default_runtime()
    proposer = kp(1)
    providers = [kp(10_000 + i) for i in range(PROVIDERS)]
    consumers = [kp(20_000 + i) for i in range(20)]
    big_op = kp(30_000).address
    operators = [big_op] * BIG + [kp(30_001 + i // 3).address for i in range(PROVIDERS - BIG)]
    alloc = [Allocation(k.address, 10**15) for k in (*providers, *consumers)]
    genesis = Genesis(CHAIN_ID, GENESIS_MS, proposer.public_key, alloc,
                      {"max_block_txs": 5_000, "market_check_min_bps": 100, "market_check_max_bps": 300,
                       "market_report_timeout_blocks": DURATION + 5, "market_max_operator_share_bps": CAP_BPS})
    chain = Chain(runtime, genesis, proposer)
    chain.block([chain.tx(k, p.REGISTER_PROVIDER, encode(p.REGISTER_PROVIDER, p.RegisterProvider(op, BOND)))
                 for k, op in zip(providers, operators, strict=True)])
    chain.block([chain.tx(k, p.POST_OFFER, encode(p.POST_OFFER, p.PostOffer(OFFER, 50, 20))) for k in providers])
    supply0 = supply(chain.state) + views.market_holdings(chain.state)

    market = Market(chain, providers, consumers)
    _err.print(f"[dim]{n_orders:,} orders, {ORDERS_PER_BLOCK} a block, {BIDS} bids each, leases of {DURATION} "
               "blocks…[/]")
    posted, last_window = 0, 0
    tail = 2  # blocks after the last report, so its spot-check draw happens and is answered
    while posted < n_orders or market.reports_due or market.pending_checks() or tail:
        tail = max(0, tail - (not (posted < n_orders or market.reports_due)))
        height = chain.parent.height + 1
        txs = market.work_block(height)
        if posted < n_orders:
            n = min(ORDERS_PER_BLOCK, n_orders - posted)
            txs += market.orders_block(posted + 1, n, height)
            posted += n
            last_window = height + 1  # the bid window of these orders closes at the end of the next block
        market.step(txs, draining=last_window < height)
    statuses = [o.status for o in views.orders(chain.state)]
    cleared = sum(s in (OrderStatus.DONE, OrderStatus.EXPIRED, OrderStatus.LEASED) for s in statuses)
    leased = sum(s == OrderStatus.DONE for s in statuses)
    conserved = supply(chain.state) + views.market_holdings(chain.state) == supply0

    _err.print(f"[dim]the yardstick: {market.market_txs:,} transfers…[/]")
    size = max(1, market.market_txs // max(1, sum(1 for s in market.block_sizes if s)))
    transfers = [chain.tx(consumers[i % len(consumers)], TRANSFER,
                          TRANSFER_CODEC.encode(Transfer(kp(50_000 + i % 5_000).address, 1)))
                 for i in range(market.market_txs)]
    transfer_s = sum(chain.block(transfers[i:i + size]) for i in range(0, len(transfers), size))

    market_per_s = market.market_txs / market.market_s
    transfer_per_s = len(transfers) / transfer_s
    result: dict[str, Any] = {
        "name": "market",
        "providers": PROVIDERS,
        "orders": n_orders,
        "orders_leased": leased,
        "orders_expired": sum(s == OrderStatus.EXPIRED for s in statuses),
        "leases": market.seen_leases,
        "checks": count(chain.state, b"mkt/cn"),
        "market_txs": market.market_txs,
        "blocks": len(market.block_sizes),
        "orders_cleared_per_s": round(cleared / market.market_s, 1),
        "market_tx_per_s": round(market_per_s, 1),
        "transfers_per_s": round(transfer_per_s, 1),
        "market_tx_vs_transfer": round(market_per_s / transfer_per_s, 3),
        "max_operator_share": market.max_share_bps / 10_000,
        "cap": CAP_BPS / 10_000,
        "share_within_cap_every_block": market.max_share_bps <= CAP_BPS,
        "max_operator_share_drain": market.drain_share_bps / 10_000,
        "conserved": conserved,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "target_market_tx_vs_transfer": TARGET,
    }
    print_table(result)
    return result


def print_table(r: dict[str, Any]) -> None:
    title = (f"market benchmark: {r['providers']} providers (one operator with {BIG}), {r['orders']:,} "
             f"orders, {r['market_txs']:,} market transactions in {r['blocks']} blocks")
    fast = r["market_tx_vs_transfer"] >= TARGET
    capped = r["share_within_cap_every_block"]
    rows = [
        ("orders cleared", f"{r['orders_cleared_per_s']:,.0f} /s",
         f"bid windows closed per second of block building ({r['orders_leased']:,} leased, "
         f"{r['orders_expired']:,} expired)"),
        ("market txs", f"{r['market_tx_per_s']:,.0f} /s", "orders, bids, work reports, check answers through "
                                                          "build_block (signature, fee, handler, end_block, commit)"),
        ("transfers", f"{r['transfers_per_s']:,.0f} /s", "plain transfers, same block size, same path"),
        ("market tx vs transfer", f"[{'green' if fast else 'red'}]{r['market_tx_vs_transfer']:.2f}[/]",
         f"market transactions per second / transfers per second; target ≥ {TARGET}"),
        ("max operator share", f"[{'green' if capped else 'red'}]{r['max_operator_share']:.4f}[/]",
         f"top operator's share of leased capacity, max over every block of the run and every class; cap "
         f"{r['cap']}"),
        ("… of it while draining", f"{r['max_operator_share_drain']:.4f}",
         "the same over the blocks after the last window alone, as the remaining leases end with no new demand"),
        ("leases / checks", f"{r['leases']:,} / {r['checks']:,}", "leases opened; spot checks drawn and answered"),
        ("conserved", "yes" if r["conserved"] else "[red]NO[/]", "balances + stakes + bonds + escrow, before = after"),
        ("peak RSS", f"{r['peak_rss_mb']:,.0f} MB", "the whole process"),
    ]
    bench.print_measures(title, rows)


if __name__ == "__main__":
    sys.exit(bench.main(run, sys.argv[1:]))
