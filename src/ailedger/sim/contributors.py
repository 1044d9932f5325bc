"""Contributors: honest cooks, and the four ways of trying to be paid for records nobody needs.

Each contributor stakes `stake_per_record` on every record (the Datanet's rule), so each kind of
attack costs the attacker its stake whenever a defence catches it:

| class | what it sends | which defence catches it |
| --- | --- | --- |
| data spammer | junk: repetition, symbols, too short, encoded blobs | the quality gate |
| near-duplicate farmer | 1-2 small edits of accepted honest notes | the near-duplicate gate; validators for misses |
| PII leaker | good notes with an e-mail, phone, card, IBAN, API or private key inside | the PII gate |
| keyword stuffer | one sentence and a list of popular cooking words: passes every gate | validators' votes |

The attackers keep sending all run, at `attacker_rate` records a block, for as long as their
balance covers the stake: persistence only deepens their loss, and a rational attacker would stop
sooner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ailedger.chain.accounts import get_account
from ailedger.chain.tx import Tx
from ailedger.core.merkle import merkle_root
from ailedger.datanet import payloads as dp
from ailedger.datanet.state import Status
from ailedger.sim.actor import Actor
from ailedger.sim.ledger import Outcome
from ailedger.sim.records import Scribe

if TYPE_CHECKING:
    from ailedger.sim.world import World

LOST = (Status.REJECTED, Status.GATE_REJECTED)


class Contributor(Actor):
    label: ClassVar[str] = "honest"

    def __init__(self, name: str, seed: int, rate: float) -> None:
        super().__init__(name, seed)
        self.rate = rate
        self.scribe = Scribe(self.rng)
        self.pending: set[bytes] = set()
        self.record_stake = 0
        self.sent: dict[bytes, list[bytes]] = {}  # contribute tx id -> its records

    def make(self, world: World) -> dict[str, Any] | None:
        return self.scribe.honest()

    def act(self, world: World) -> list[Tx]:
        self.record_stake = world.stake_per_record
        balance = get_account(world.ledger.state, self.address).balance
        affordable = max(0, (balance - world.ledger.fee) // max(self.record_stake, 1))
        hashes = []
        for _ in range(min(self.count(self.rate), affordable)):
            record = self.make(world)
            h = None if record is None else world.book.add(record, self.label, self.name, world.height + 1)
            if h is not None:
                hashes.append(h)
        if not hashes:
            return []
        tx = world.ledger.tx(self.key, dp.CONTRIBUTE, dp.Contribute(world.datanet, hashes, merkle_root(hashes)))
        self.sent[tx.id] = hashes
        return [tx]

    def observe(self, world: World, outcome: Outcome) -> None:
        for tx_id, hashes in self.sent.items():
            if outcome.codes.get(tx_id) == 0:
                self.pending.update(hashes)
                world.watch_until(hashes, outcome.height + world.window)
            else:  # never on the ledger: forget the bytes too
                world.book.forget(hashes)
        self.sent.clear()

    def resolved(self, record: bytes, status: int) -> None:
        self.pending.discard(record)
        if status in LOST:
            self.slashed += self.record_stake

    def escrow(self) -> int:
        return len(self.pending) * self.record_stake


class HonestCook(Contributor):
    role = "honest contributor"


class DataSpammer(Contributor):
    role, side, label = "data spammer", "dishonest", "junk"

    def make(self, world: World) -> dict[str, Any] | None:
        return self.scribe.junk()


class NearDupFarmer(Contributor):
    role, side, label = "near-duplicate farmer", "dishonest", "near_dup"

    def make(self, world: World) -> dict[str, Any] | None:
        sources = world.book.accepted
        if not sources:
            return None
        return self.scribe.near_copy(world.book[sources[int(self.rng.random() * len(sources))]].record)


class PiiLeaker(Contributor):
    role, side, label = "PII leaker", "dishonest", "pii"

    def make(self, world: World) -> dict[str, Any] | None:
        return self.scribe.pii()


class KeywordStuffer(Contributor):
    role, side, label = "keyword stuffer", "dishonest", "stuffing"

    def make(self, world: World) -> dict[str, Any] | None:
        return self.scribe.stuffing()

