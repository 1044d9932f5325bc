"""The simulated world: its cast, its genesis, and one step of the loop (a block).

A step asks every actor for its transactions in a fixed order, so the block reads like a day of
the economy: the curator's gate verdicts, the validators' votes on what passed, new contributions,
the builder's publication, the consumers' requests and the provider's receipts. The block is built
by the real state machine (`Runtime.build_block`: admission checks, every module's handler, every
end_block: Datanet finalisation, billing, settlement), then each actor sees what happened and the
records whose fate was decided in that block are read back from the ledger.

Everything is seeded: keys, actors' choices and records come from `seed`, the ledger adds no
randomness of its own, so a seed always gives the same blocks and the same final state root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ailedger.agents.state import AgentStatus, find_agent
from ailedger.chain import params
from ailedger.chain.genesis import Allocation, Genesis
from ailedger.chain.tx import Tx
from ailedger.core.hashing import canonical_json, sha256
from ailedger.core.keys import KeyPair
from ailedger.datanet import state as dn
from ailedger.datanet import views as dn_views
from ailedger.datanet.state import FeeSplit, Status
from ailedger.datanet.synth import SCHEMA
from ailedger.modules import default_runtime
from ailedger.sim.actor import Actor
from ailedger.sim.attributor import StandInAttributor
from ailedger.sim.books import Books
from ailedger.sim.compute import ComputeBuyer, ComputeProvider, DominantIdentity, LeaseSkipper, MarketBoard
from ailedger.sim.contributors import Contributor, DataSpammer, HonestCook, KeywordStuffer, NearDupFarmer, PiiLeaker
from ailedger.sim.inference import BASE, Consumer, ModelBuilder, Request, ServingProvider
from ailedger.sim.ledger import SimLedger
from ailedger.sim.records import RecordBook
from ailedger.sim.tasks import AgentOperator, FakingAgent, TaskBoard, TaskConsumer
from ailedger.sim.validators import ColludingValidator, Curator, HonestValidator

UNIT = 1_000_000
DATANET = "cooking"
SPLIT = FeeSplit(7_000, 1_000, 1_000, 1_000)  # data, model owner, compute, validators


@dataclass(frozen=True)
class EconomyConfig:
    """Every knob of a run; the ledger's own parameters are in `genesis_params`."""

    seed: int = 1
    honest_cooks: int = 5
    honest_validators: int = 3
    colluders: int = 2
    consumers: int = 3
    cook_rate: float = 0.5  # records a block, each honest contributor
    attacker_rate: float = 0.3  # records a block, each dishonest contributor
    requests_per_consumer: float = 4.0
    stake_per_record: int = UNIT
    quorum: int = 3
    window: int = 3
    split: FeeSplit = SPLIT
    price_per_1k: int = 2 * UNIT
    snapshot_every: int = 20
    honest_stake: int = 40 * UNIT  # bonded by each honest validator and the curator
    colluder_stake: int = 20 * UNIT
    attacker_balance: int = 400 * UNIT  # what each attacker can lose: stakes, top-ups, fees
    consumer_prepaid: int = 20_000 * UNIT
    colluders_majority: bool = False  # the other case: colluders bond 3x the honest validators' stake
    # compute market: 4 honest providers x 2 accelerators and a skipper's 2 are 40%, the dominant 5 x 3 are 60%
    honest_providers: int = 4
    honest_accelerators: int = 2
    dominant_identities: int = 5
    dominant_accelerators: int = 3
    sybils_declared: bool = True  # the dominant identities declare their common operator
    skipper_accelerators: int = 2
    compute_buyers: int = 2
    orders_per_buyer: float = 0.3
    lease_blocks: int = 20
    bid_window: int = 2
    cost_per_block: int = 300_000
    max_price_per_block: int = 600_000
    # agents
    honest_agents: int = 2
    faking_agents: int = 2
    task_consumers: int = 2
    tasks_per_consumer: float = 0.8
    honest_agent_price: int = 50_000
    faker_price: int = 40_000
    task_fee: int = 60_000
    task_result_blocks: int = 5
    agent_stake: int = 5 * UNIT
    genesis_params: dict[str, int] = field(default_factory=lambda: {
        "datanet_min_window_blocks": 1, "datanet_vote_slash_bps": 2_000, "min_fee": 1_000,
        "market_provider_min_stake": 20 * UNIT})


class World:
    def __init__(self, config: EconomyConfig) -> None:
        self.config = config
        self.datanet = DATANET
        self.schema_hash = sha256(canonical_json(SCHEMA))
        data = self._datanet_cast()
        compute, dominant = self._market_cast()
        posters = self._agent_cast()
        # the order of a block's transactions: gates, votes, contributions, publication, requests, receipts,
        # then the compute market (checks, reports, bids, orders) and the agents (results, tasks)
        self.cast: list[Actor] = [*data, *compute, *self.agent_operators, *posters]
        self.board = MarketBoard(dominant=[d.operator for d in dominant])
        self.tasks = TaskBoard()
        proposer = KeyPair.from_seed(sha256(f"ailedger-sim/{config.seed}/proposer".encode()))
        self.ledger = SimLedger(default_runtime(), self.genesis(proposer), proposer)
        self.book = RecordBook()
        self.books = Books(self.cast, proposer.address, DATANET)
        self.fresh: list[bytes] = []  # records contributed in the last block
        self.reviewable: list[bytes] = []  # of those, the ones that passed the gates (set by the curator)
        self.requests: list[Request] = []
        self.attributor: StandInAttributor | None = None
        self.due: dict[int, list[bytes]] = {}
        self.decided: list[bytes] = []
        self.setup_height = 0  # the economy's block n is height setup_height + n

    def _datanet_cast(self) -> list[Actor]:
        """The Datanet and paid inference: curator, validators, contributors, builder, consumers, provider."""
        c, seed = self.config, self.config.seed
        self.curator = Curator("curator", seed, c.honest_stake)
        validators: list[HonestValidator] = [HonestValidator(f"validator-{i}", seed, c.honest_stake)
                                             for i in range(c.honest_validators)]
        bonded = 3 * c.honest_stake * (c.honest_validators + 1) // c.colluders if c.colluders_majority \
            else c.colluder_stake
        colluders = [ColludingValidator(f"colluder-{i}", seed, bonded) for i in range(c.colluders)]
        contributors: list[Contributor] = [HonestCook(f"cook-{i}", seed, c.cook_rate) for i in range(c.honest_cooks)]
        contributors += [kind(kind.role.replace(" ", "-").lower(), seed, c.attacker_rate)
                         for kind in (DataSpammer, NearDupFarmer, PiiLeaker, KeywordStuffer)]
        self.contributors = {a.name: a for a in contributors}
        self.builder = ModelBuilder("builder", seed)
        self.provider = ServingProvider("provider", seed)
        consumers = [Consumer(f"consumer-{i}", seed) for i in range(c.consumers)]
        return [self.curator, *validators, *colluders, *contributors, self.builder, *consumers, self.provider]

    def _market_cast(self) -> tuple[list[Actor], list[DominantIdentity]]:
        """Honest providers, the 60% operator's identities, the lease skipper, then the buyers."""
        c, seed = self.config, self.config.seed
        owner = sha256(f"ailedger-sim/{seed}/dominant-operator".encode())[:20]
        honest = [ComputeProvider(f"compute-{i}", seed, c.honest_accelerators) for i in range(c.honest_providers)]
        dominant = [DominantIdentity(f"dominant-{i}", seed, c.dominant_accelerators,
                                     owner if c.sybils_declared else None) for i in range(c.dominant_identities)]
        buyers = [ComputeBuyer(f"compute-buyer-{i}", seed) for i in range(c.compute_buyers)]
        return [*honest, *dominant, LeaseSkipper("lease-skipper", seed, c.skipper_accelerators), *buyers], dominant

    def _agent_cast(self) -> list[Actor]:
        """Agent operators (kept in `agent_operators`) and the task consumers."""
        c, seed = self.config, self.config.seed
        self.agent_operators: list[AgentOperator] = [
            AgentOperator(f"honest-agent-{i}", seed, c.honest_agent_price) for i in range(c.honest_agents)]
        self.agent_operators += [FakingAgent(f"faking-agent-{i}", seed, c.faker_price) for i in range(c.faking_agents)]
        return [TaskConsumer(f"task-consumer-{i}", seed) for i in range(c.task_consumers)]

    def genesis(self, proposer: KeyPair) -> Genesis:
        c = self.config
        alloc = [Allocation(a.address, *a.funds(c)) for a in self.cast]
        return Genesis(f"sim-economy-{c.seed}", 1_700_000_000_000, proposer.public_key, alloc, dict(c.genesis_params))

    # -- what actors read ------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self.ledger.height

    @property
    def stake_per_record(self) -> int:
        return self.config.stake_per_record

    @property
    def window(self) -> int:
        return self.config.window

    @property
    def provider_address(self) -> bytes:
        return self.provider.address

    @property
    def validator_min_stake(self) -> int:
        return self.param("datanet_validator_min_stake")

    def param(self, name: str) -> int:
        value: Any = params.get(self.ledger.state, name)
        return int(value)

    @property
    def base_model(self) -> str:
        return BASE

    def agent_operator(self, name: str) -> AgentOperator:
        return next(op for op in self.agent_operators if op.agent == name)

    def agent_active(self, name: str) -> bool:
        agent = find_agent(self.ledger.state, name)
        return agent is not None and agent.status == AgentStatus.ACTIVE

    def datanet_versions(self) -> int:
        return dn.get_counters(self.ledger.state, DATANET).versions

    # -- what actors tell the world ----------------------------------------------------------------

    def watch_until(self, hashes: list[bytes], window_end: int) -> None:
        self.due.setdefault(window_end, []).extend(hashes)
        self.fresh.extend(hashes)

    def watch_now(self, hashes: list[bytes]) -> None:
        self.decided.extend(hashes)

    def serve(self, datanet_version: int) -> None:
        """The builder published an adapter on `datanet_version`: the stand-in engine loads its records."""
        state = self.ledger.state
        version = dn_views.get_version(state, DATANET, datanet_version)
        hashes = dn_views.accepted_hashes(state, DATANET, 0, version.count) if version else []
        owners = {h: self.contributors[self.book[h].owner].address for h in hashes}
        self.attributor = StandInAttributor({h: self.book[h].text for h in hashes}, owners)

    # -- the loop ----------------------------------------------------------------------------------

    def setup(self) -> None:
        self.books.open(self.ledger.state)
        txs: list[Tx] = []
        for a in self.cast:
            txs += a.setup(self)
        self.seal(txs)
        self.setup_height = self.height

    def step(self) -> None:
        txs: list[Tx] = []
        for a in self.cast:
            txs += a.act(self)
        self.fresh = []
        self.seal(txs)

    def seal(self, txs: list[Tx]) -> None:
        outcome = self.ledger.seal(txs)
        self.board.refresh(self)
        self.tasks.refresh(self)
        for a in self.cast:
            a.observe(self, outcome)
        self.resolve()
        self.books.record(self.ledger.state, self.height)

    def resolve(self) -> None:
        """Read back the records the last block decided (gate verdicts, windows that ended)."""
        state = self.ledger.state
        for h in [*self.decided, *self.due.pop(self.height, [])]:
            rs = dn.get_record_state(state, DATANET, h)
            entry = self.book.entries.get(h)
            if rs is None or rs.status == Status.PENDING or entry is None or entry.status != Status.PENDING:
                continue
            entry = self.book.settle(h, rs.status)
            self.contributors[entry.owner].resolved(h, rs.status)
        self.decided = []
