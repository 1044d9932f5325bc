"""What every participant of the simulated economy is: keys, a seeded mind, and a side.

Why one shape: the world asks every actor, in a fixed order, for its transactions of the next
block (`act`), then shows it what the block did (`observe`); accounts are read back from the
ledger, never from what an actor believes it earned. An actor's *class* (`role`) is the row of the
report's table; its *side* says what the run must prove about that row: honest classes must end
with more than they began with, dishonest ones with no more, and buyers (consumers) pay for answers
by design, so they are reported but not judged; the operator holding 60% of all compute capacity
does the work it is paid for, so what the run must prove about it is that the concentration cap
holds, not that it loses money (side "concentrated").
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, ClassVar, Literal

from ailedger.chain.tx import Tx
from ailedger.core.hashing import sha256
from ailedger.core.keys import KeyPair

if TYPE_CHECKING:
    from ailedger.sim.ledger import Outcome
    from ailedger.sim.world import EconomyConfig, World

UNIT = 1_000_000

Side = Literal["honest", "dishonest", "buyer", "concentrated"]


class Actor:
    role: ClassVar[str] = ""
    side: ClassVar[Side] = "honest"

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.key = KeyPair.from_seed(sha256(f"ailedger-sim/{seed}/{name}".encode()))
        self.rng = random.Random(f"ailedger-sim/{seed}/{name}")
        self.slashed = 0  # taken from this actor by a ledger rule for misbehaviour (stake lost)

    @property
    def address(self) -> bytes:
        return self.key.address

    def funds(self, c: EconomyConfig) -> tuple[int, int]:
        """(balance, bonded stake) at genesis: attackers get `attacker_balance` to lose, others enough to act."""
        return (c.attacker_balance if self.side == "dishonest" else 100 * UNIT), 0

    def setup(self, world: World) -> list[Tx]:
        """Transactions of the setup block (registrations, deposits)."""
        return []

    def act(self, world: World) -> list[Tx]:
        """Transactions for the next block."""
        return []

    def observe(self, world: World, outcome: Outcome) -> None:
        """What the block just sealed did."""

    def escrow(self) -> int:
        """Value of this actor's held by the ledger outside its accounts' balances (pending record stakes)."""
        return 0

    def count(self, rate: float) -> int:
        """How many things to do this block for an expected `rate` per block."""
        whole = int(rate)
        return whole + (1 if self.rng.random() < rate - whole else 0)
