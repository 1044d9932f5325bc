"""Who ended up with what: every actor's holdings read back from the ledger, summed per class.

An actor's **wealth** is everything the ledger holds for its address: spendable balance, bonded and
unbonding stake, prepaid balance (and what is withdrawing from it), earnings balance and vesting,
plus the stake of its own records still pending (in the Datanet's escrow until decided). Wealth at
the start is read before the first block, so every fee and stake of the run counts.

Per class: **net** = wealth now - wealth at the start (the figure the targets judge);
**slashed** = what ledger rules took for misbehaviour (record stakes lost to gates and votes, bonded
stake slashed for losing votes); **fees** = transaction fees paid to the block proposer;
**earned** = net + slashed + fees, everything that came in. Consumers (buyers) spend by design:
their earned is what they paid, negated.

The proposer (fees), the Datanet's validator pool (gate-rejected stakes), the escrow of open
compute orders and agent tasks (buyers' money in flight) and the agents' slash pool hold the rest,
so Σ nets + their growth = 0 exactly: `unaccounted` reports any difference. A provider's market
bond is its own wealth.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ailedger.agents import views as agents
from ailedger.billing import state as billing
from ailedger.chain.accounts import get_account
from ailedger.chain.state import State
from ailedger.datanet import state as dn
from ailedger.market import views as market
from ailedger.settlement import state as st
from ailedger.sim.actor import Actor, Side


def holdings(state: State, address: bytes) -> int:
    a = get_account(state, address)
    b = billing.get_account(state, address)
    e = st.get_earnings(state, address)
    p = market.get_provider(state, address)
    return (a.balance + a.stake + a.unbonding + b.prepaid + b.withdrawing + e.balance + e.held
            + (p.bond if p is not None else 0))


@dataclass
class ClassRow:
    role: str
    side: Side
    actors: int = 0
    net: int = 0
    slashed: int = 0
    fees: int = 0

    @property
    def earned(self) -> int:
        return self.net + self.slashed + self.fees


@dataclass
class Books:
    cast: list[Actor]
    proposer: bytes
    datanet: str
    start: dict[bytes, int] = field(default_factory=dict)
    start_other: int = 0
    series: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # class -> net per block
    heights: list[int] = field(default_factory=list)

    def open(self, state: State) -> None:
        self.start = {a.address: holdings(state, a.address) + a.escrow() for a in self.cast}
        self.start_other = self.others(state)

    def others(self, state: State) -> int:
        """What no actor holds: the proposer's fees, the Datanet's pool, escrow of compute orders and of
        agent tasks (a buyer's until refunded or paid), the agents' slash pool."""
        orders = sum(o.escrow for o in market.orders(state))
        return (get_account(state, self.proposer).balance + dn.get_amount(state, dn.pool_key(self.datanet))
                + orders + agents.holdings(state))

    def wealth(self, state: State, actor: Actor) -> int:
        return holdings(state, actor.address) + actor.escrow()

    def rows(self, state: State, fees: dict[bytes, int]) -> list[ClassRow]:
        rows: dict[str, ClassRow] = {}
        for a in self.cast:
            row = rows.setdefault(a.role, ClassRow(a.role, a.side))
            row.actors += 1
            row.net += self.wealth(state, a) - self.start[a.address]
            row.slashed += a.slashed
            row.fees += fees.get(a.address, 0)
        return list(rows.values())

    def record(self, state: State, height: int) -> None:
        """One point of the earnings-over-blocks plot."""
        nets: dict[str, int] = defaultdict(int)
        for a in self.cast:
            nets[a.role] += self.wealth(state, a) - self.start[a.address]
        for role, net in nets.items():
            self.series[role].append(net)
        self.heights.append(height)

    def unaccounted(self, state: State) -> int:
        nets = sum(self.wealth(state, a) - self.start[a.address] for a in self.cast)
        return nets + self.others(state) - self.start_other
