"""The compute market's actors: buyers of serving capacity, honest providers, a 60% operator, a lease skipper.

Everything goes through the market module's transactions (docs/market.md): providers bond stake and
post offers, buyers post orders with their budget in escrow, providers bid during the window, the
end_block auction opens a lease to the lowest valid bid the concentration cap allows, providers
report work and withdraw pay, and spot checks drawn from block hashes are answered by another
operator's provider, who re-runs the work off the ledger.

Work is stood in for by a digest anyone can recompute: the true result of a lease's n-th report is
SHA-256("work" | lease | n). Honest providers report it; a verifier re-computes it and answers
whether the reported digest matches.

The cast:
* honest compute providers: one operator each, bid their cost plus a margin, never take more leases
  than their offered accelerators;
* the dominant operator: 60% of all offered accelerators, spread over several bonded identities,
  bidding under everyone else's price to win every order; with `sybils_declared` (the default) every
  identity declares the operator, so the cap counts them together; without it each claims to be its
  own operator, which the ledger cannot tell apart (docs/economy.md gives both runs);
* the lease skipper: bids lowest, takes leases, never runs the work, reports made-up digests every
  block and withdraws the pay at once, hoping to be gone before a spot check finds it out; when
  slashing takes its bond under the minimum it tops it up and goes on while its balance lasts;
* compute buyers (buyers, not judged): post one-accelerator serving orders at a fixed maximum price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ailedger.chain.accounts import get_account
from ailedger.chain.tx import Tx
from ailedger.core.hashing import sha256
from ailedger.market import concentration
from ailedger.market import payloads as mk
from ailedger.market import views as market
from ailedger.market.book import CheckStatus, LeaseStatus, OrderStatus, count
from ailedger.market.resources import Resources
from ailedger.market.state import Kind
from ailedger.sim.actor import UNIT, Actor
from ailedger.sim.ledger import Outcome

if TYPE_CHECKING:
    from ailedger.sim.world import EconomyConfig, World

ACCELERATOR = "h100"
REGION = "eu"
CLASS = ACCELERATOR
NEED = Resources(8, 64, ACCELERATOR, 1, "")


def true_digest(lease: int, report: int) -> bytes:
    return sha256(f"work/{lease}/{report}".encode())


@dataclass
class MarketBoard:
    """What everyone can read off the ledger after a block: live orders, and the concentration record."""

    live: dict[int, int] = field(default_factory=dict)  # order id -> window end, while the order is bidding
    watched: set[int] = field(default_factory=set)  # orders not yet done, expired or cancelled
    seen: int = 0  # highest order id read
    checks_seen: int = 0  # highest spot-check id read
    pending: dict[bytes, set[int]] = field(default_factory=dict)  # verifier -> pending check ids
    dominant: list[bytes] = field(default_factory=list)  # the operators the dominant owner declared
    top_share_bps: list[int] = field(default_factory=list)
    hhi: list[int] = field(default_factory=list)
    true_top_bps: list[int] = field(default_factory=list)  # the dominant owner's share, identities summed

    def refresh(self, world: World) -> None:
        state = world.ledger.state
        for new in market.orders(state, start=self.seen + 1):
            self.watched.add(new.id)
            self.seen = max(self.seen, new.id)
        self.live = {}
        for oid in sorted(self.watched):
            o = market.get_order(state, oid)
            if o is None or o.status not in (OrderStatus.BIDDING, OrderStatus.LEASED):
                self.watched.discard(oid)
            elif o.status == OrderStatus.BIDDING:
                self.live[oid] = o.window_end
        for cid in range(self.checks_seen + 1, count(state, b"mkt/cn") + 1):
            c = market.get_check(state, cid)
            if c is not None:
                self.pending.setdefault(c.verifier, set()).add(cid)
            self.checks_seen = cid
        for ids in self.pending.values():
            for cid in list(ids):
                c = market.get_check(state, cid)
                if c is None or c.status != CheckStatus.PENDING:
                    ids.discard(cid)
        rows = market.stat_history(state, CLASS, world.height, world.height)
        if rows:
            self.top_share_bps.append(rows[-1].top_share_bps)
            self.hhi.append(rows[-1].hhi)
        else:  # no change this block: the last record stands
            self.top_share_bps.append(self.top_share_bps[-1] if self.top_share_bps else 0)
            self.hhi.append(self.hhi[-1] if self.hhi else 0)
        self.true_top_bps.append(self.dominant_share_bps(world))

    def dominant_share_bps(self, world: World) -> int:
        """The dominant owner's true share of leased capacity, whatever operators its identities declared."""
        state = world.ledger.state
        units = sum(concentration.operator_units(state, CLASS, op) for op in set(self.dominant))
        denom = max(concentration.total_units(state, CLASS), world.param("market_share_floor_units"), 1)
        return units * 10_000 // denom


class ComputeBuyer(Actor):
    role, side = "compute buyer", "buyer"

    def funds(self, c: EconomyConfig) -> tuple[int, int]:
        return 10_000 * UNIT, 0

    def act(self, world: World) -> list[Tx]:
        c = world.config
        if self.rng.random() >= c.orders_per_buyer:
            return []
        order = mk.PostOrder(Kind.SERVE, sha256(f"{self.name}/{world.height}".encode()), NEED, mk.Unit.BLOCK,
                             c.max_price_per_block, c.max_price_per_block * c.lease_blocks, c.bid_window,
                             c.lease_blocks)
        return [world.ledger.tx(self.key, mk.POST_ORDER, order)]


class ComputeProvider(Actor):
    """An honest provider: bids cost plus a margin while it has free accelerators, does the work, checks others."""

    role = "honest compute provider"

    def __init__(self, name: str, seed: int, accelerators: int, operator: bytes | None = None) -> None:
        super().__init__(name, seed)
        self.accelerators = accelerators
        self.operator = operator if operator is not None else self.address
        self.leases: set[int] = set()
        self.bids: dict[int, int] = {}  # order id -> window end, bids not yet decided
        self.withdraw_every = 5
        self.bonded = 0  # bond put in by register_provider transactions that applied
        self.bonding: dict[bytes, int] = {}  # register_provider tx id -> amount, until the block is seen
        self.topup = 0

    def setup(self, world: World) -> list[Tx]:
        offer = mk.PostOffer(Resources(8 * self.accelerators, 64 * self.accelerators, ACCELERATOR, self.accelerators,
                                       REGION), self.price(world), 0)
        bond = world.param("market_provider_min_stake")  # every provider bonds the minimum the market asks
        return [self.register(world, bond), world.ledger.tx(self.key, mk.POST_OFFER, offer)]

    def register(self, world: World, amount: int) -> Tx:
        tx = world.ledger.tx(self.key, mk.REGISTER_PROVIDER, mk.RegisterProvider(self.operator, amount))
        self.bonding[tx.id] = amount
        return tx

    def price(self, world: World) -> int:
        return world.config.cost_per_block * (100 + 10 + int(self.rng.random() * 30)) // 100

    def act(self, world: World) -> list[Tx]:
        txs = self.answer_checks(world) + self.work(world)
        free = 0 if self.topup else self.accelerators - len(self.leases) - len(self.bids)
        for oid in sorted(world.board.live):
            if free <= 0:
                break
            if oid not in self.bids and world.board.live[oid] > world.height:
                txs.append(world.ledger.tx(self.key, mk.BID, mk.Bid(oid, self.price(world))))
                self.bids[oid] = world.board.live[oid]
                free -= 1
        return txs

    def digest(self, lease: int, report: int) -> bytes:
        return true_digest(lease, report)

    def work(self, world: World) -> list[Tx]:
        txs = []
        state = world.ledger.state
        for lid in sorted(self.leases):
            lease = market.get_lease(state, lid)
            if lease is None:
                continue
            txs.append(world.ledger.tx(self.key, mk.REPORT_WORK,
                                       mk.ReportWork(lid, self.digest(lid, lease.reports + 1), 0)))
            if (world.height + lid) % self.withdraw_every == 0:
                txs.append(world.ledger.tx(self.key, mk.WITHDRAW_PAY, mk.LeaseRef(lid)))
        return txs

    def verdict(self, lease: int, report: int, digest: bytes) -> int:
        """Re-run the sampled work and compare."""
        return int(digest == true_digest(lease, report))

    def answer_checks(self, world: World) -> list[Tx]:
        txs = []
        for cid in sorted(world.board.pending.get(self.address, ())):
            c = market.get_check(world.ledger.state, cid)
            if c is not None:
                txs.append(world.ledger.tx(self.key, mk.CHECK_RESULT, mk.CheckResult(
                    cid, self.verdict(c.lease, c.report, c.digest), true_digest(c.lease, c.report))))
        return txs

    def observe(self, world: World, outcome: Outcome) -> None:
        state = world.ledger.state
        for oid, end in list(self.bids.items()):
            if end > world.height:
                continue
            del self.bids[oid]
            order = market.get_order(state, oid)
            if order is not None and order.lease:
                lease = market.get_lease(state, order.lease)
                if lease is not None and lease.provider == self.address and lease.status == LeaseStatus.ACTIVE:
                    self.leases.add(lease.id)
        for lid in list(self.leases):
            lease = market.get_lease(state, lid)
            if lease is None or lease.status != LeaseStatus.ACTIVE:
                self.leases.discard(lid)
        for tx_id, amount in self.bonding.items():
            self.bonded += amount if outcome.codes.get(tx_id) == 0 else 0
        self.bonding.clear()
        p = market.get_provider(state, self.address)
        bond = p.bond if p is not None else 0
        self.slashed = self.bonded - bond
        self.topup = max(0, world.param("market_provider_min_stake") - bond)


class DominantIdentity(ComputeProvider):
    """One identity of the operator that holds 60% of all offered capacity."""

    role, side = "dominant operator (60%)", "concentrated"

    def price(self, world: World) -> int:
        return world.config.cost_per_block * 105 // 100  # under every honest bid


class LeaseSkipper(ComputeProvider):
    role, side = "lease skipper", "dishonest"

    def __init__(self, name: str, seed: int, accelerators: int) -> None:
        super().__init__(name, seed, accelerators)
        self.withdraw_every = 1

    def price(self, world: World) -> int:
        return world.config.cost_per_block * 80 // 100  # below cost: it never pays for the work

    def digest(self, lease: int, report: int) -> bytes:
        return sha256(f"made-up/{self.name}/{lease}/{report}".encode())

    def verdict(self, lease: int, report: int, digest: bytes) -> int:
        return 1  # says "matched" without re-running anything

    def act(self, world: World) -> list[Tx]:
        txs = []
        balance = get_account(world.ledger.state, self.address).balance
        if self.topup and balance >= self.topup + 4 * world.ledger.fee:  # else it can no longer bid
            txs.append(self.register(world, self.topup))
            self.topup = 0
        return txs + super().act(world)

