"""The Datanet's curator (owner and gatekeeper), its honest validators, and validators who collude.

Gatekeeping is the real thing: the curator runs `datanet.gates.GateRunner` off the ledger over the
bytes of the records contributed in the last block, with the Datanet's schema and near-duplicate
index (records that pass join the index, as `datanet/gatekeeper.py` does), and posts one
`gate_verdict` naming every failure with its gate and reason. The curator is also a validator, so
its reviews are paid like anyone's.

Validators then vote in the same block on the records that passed the gates. The honest ones read
the record and vote by what it is (the simulation's ground truth stands in for a careful human
review: accept an honest note, reject stuffing or a copy the gates missed). Colluding validators
vote together for the opposite of the evidence, on every record, and top their bonded stake back up
to the minimum whenever slashing takes it below, so they never stop attacking while they can pay.

What the ledger does about it (docs/datanets.md): a record is decided by stake x reputation
weight; every vote against the outcome is slashed `datanet_vote_slash_bps` of the record's stake,
and that slash is paid to the winning side; a voter's validator reputation falls with each losing
vote, so its weight shrinks even before its stake does. With the honest validators holding the
stake majority, every colluding vote loses. With the majority the other way round (`--colluders-
majority`), the colluders decide every record and the honest validators are the ones slashed:
docs/economy.md gives the figures of that run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger.chain.accounts import STAKE, Amount, get_account
from ailedger.chain.tx import Tx
from ailedger.datanet import payloads as dp
from ailedger.datanet import state as dn
from ailedger.datanet.gates.lsh import NearDupIndex
from ailedger.datanet.gates.records import record_text
from ailedger.datanet.gates.runner import GateConfig, GateRunner
from ailedger.datanet.synth import SCHEMA
from ailedger.sim.actor import UNIT, Actor
from ailedger.sim.ledger import Outcome
from ailedger.sim.tasks import AgentVerifier

if TYPE_CHECKING:
    from ailedger.sim.world import EconomyConfig, World


class HonestValidator(Actor):
    role = "honest validator"

    def __init__(self, name: str, seed: int, bonded: int) -> None:
        super().__init__(name, seed)
        self.bonded = bonded  # stake put in (genesis plus top-ups that applied); slashes are the shortfall
        self.topups: dict[bytes, int] = {}

    def judge(self, label: str) -> int:
        return int(label == "honest")

    def funds(self, c: EconomyConfig) -> tuple[int, int]:
        return (c.attacker_balance if self.side == "dishonest" else 50 * UNIT), self.bonded

    def setup(self, world: World) -> list[Tx]:
        return [world.ledger.tx(self.key, dp.REGISTER_VALIDATOR, dp.Named(world.datanet))]

    def act(self, world: World) -> list[Tx]:
        if get_account(world.ledger.state, self.address).stake < world.validator_min_stake:
            return []  # slashed below the stake a vote needs
        return self.vote(world)

    def vote(self, world: World) -> list[Tx]:
        if not world.reviewable:
            return []
        ballots = [dp.Ballot(h, self.judge(world.book[h].label)) for h in sorted(world.reviewable)]
        return [world.ledger.tx(self.key, dp.VOTE, dp.VoteBatch(world.datanet, ballots))]

    def observe(self, world: World, outcome: Outcome) -> None:
        for tx_id, amount in self.topups.items():
            if outcome.codes.get(tx_id) == 0:
                self.bonded += amount
        self.topups.clear()
        self.slashed = self.bonded - get_account(world.ledger.state, self.address).stake


class ColludingValidator(HonestValidator):
    role, side = "colluding validator", "dishonest"

    def judge(self, label: str) -> int:
        return int(label != "honest")

    def act(self, world: World) -> list[Tx]:
        if not world.reviewable:
            return []
        acct = get_account(world.ledger.state, self.address)
        short = world.validator_min_stake - acct.stake
        txs = []
        if short > 0:
            if acct.balance < short + 2 * world.ledger.fee:
                return []  # cannot afford to vote any more
            tx = world.ledger.tx(self.key, STAKE, Amount(short))
            self.topups[tx.id] = short
            txs.append(tx)
        return txs + self.vote(world)


class Curator(HonestValidator):
    """Owns the Datanet, gates every new record, votes honestly, freezes a version now and then, and
    verifies sampled agent tasks (it already holds the verifier's bonded stake)."""

    role = "curator"

    def __init__(self, name: str, seed: int, bonded: int) -> None:
        super().__init__(name, seed, bonded)
        self.config = GateConfig(schema=SCHEMA)
        self.index = NearDupIndex(self.config.neardup_threshold, self.config.neardup_num_perm,
                                  self.config.neardup_seed)
        self.verdict: tuple[bytes, list[bytes]] | None = None
        self.snapshotted = 0  # accepted count at the last snapshot
        self.verifier = AgentVerifier()

    def setup(self, world: World) -> list[Tx]:
        c = world.config
        create = dp.CreateDatanet(world.datanet, "home cooking tips", "the adversarial economy's Datanet",
                                  world.schema_hash, "CC-BY-4.0", c.stake_per_record, c.quorum, c.window,
                                  c.split, 8_000, 0)
        return [world.ledger.tx(self.key, dp.CREATE, create), *super().setup(world),
                *self.verifier.setup(world, self)]

    def act(self, world: World) -> list[Tx]:
        txs = self.gate(world)
        txs += super().act(world)
        accepted = dn.get_counters(world.ledger.state, world.datanet).accepted
        if world.height % world.config.snapshot_every == 0 and accepted > self.snapshotted:
            txs.append(world.ledger.tx(self.key, dp.SNAPSHOT, dp.Named(world.datanet)))
            self.snapshotted = accepted
        return txs + self.verifier.act(world, self)

    def gate(self, world: World) -> list[Tx]:
        """Run every gate over the last block's new records; the passing ones become reviewable."""
        fresh, world.reviewable = world.fresh, []
        if not fresh:
            return []
        results = GateRunner(self.config, frozenset(), self.index).check_chunk([world.book[h].record for h in fresh])
        rejections, passed = [], []
        for h, r in zip(fresh, results, strict=True):
            if r.passed:
                passed.append(h)
            else:
                v = r.failures[0]
                rejections.append(dp.Rejection(h, int(v.gate), int(v.reason)))
        if passed:
            self.index.add_many(passed, self.index.signatures([record_text(world.book[h].record) for h in passed]))
        world.reviewable = passed
        if not rejections:
            return []
        tx = world.ledger.tx(self.key, dp.GATE_VERDICT, dp.GateVerdict(world.datanet, rejections))
        self.verdict = (tx.id, [r.record for r in rejections])
        return [tx]

    def observe(self, world: World, outcome: Outcome) -> None:
        super().observe(world, outcome)
        if self.verdict is not None:
            tx_id, rejected = self.verdict
            if outcome.codes.get(tx_id) == 0:
                world.watch_now(rejected)
            self.verdict = None
