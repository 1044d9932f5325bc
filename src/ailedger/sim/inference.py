"""Payable inference: the model builder, the serving provider and the consumers who pay them.

The flow is the ledger's own (docs/billing.md, docs/settlement.md): consumers deposit a prepaid
balance and bind an API key to the provider; the builder publishes a new adapter version on every
new Datanet version (standing for a retraining on the frozen snapshot); each block the consumers
send requests, and the provider submits one receipt per answer with its tokens and the attribution
shares of the stand-in engine (`sim.attributor`) over that version's records. Billing charges each
receipt into escrow at the adapter's price, and settlement splits it at the end of the same block:
data part to the records' contributors (only records still accepted), then the model owner, the
provider and the Datanet's validators by their bonded stake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ailedger.billing import payloads as bp
from ailedger.chain.tx import Tx
from ailedger.core.hashing import sha256
from ailedger.models import payloads as mp
from ailedger.sim.actor import UNIT, Actor
from ailedger.sim.attributor import QUERY_POOLS
from ailedger.sim.ledger import Outcome

if TYPE_CHECKING:
    from ailedger.sim.world import EconomyConfig, World

BASE = "smollm2"
ADAPTER = "cooking-lora"


@dataclass(frozen=True)
class Request:
    key_hash: bytes
    prompt_tokens: int
    completion_tokens: int
    query: tuple[str, ...]


@dataclass(frozen=True)
class Published:
    version: int  # the adapter's version
    datanet_version: int
    adapter_hash: bytes


class ModelBuilder(Actor):
    role = "model builder"

    def __init__(self, name: str, seed: int) -> None:
        super().__init__(name, seed)
        self.weights = sha256(f"{name}/base-weights".encode())
        self.pending: tuple[bytes, Published] | None = None
        self.live: Published | None = None

    def setup(self, world: World) -> list[Tx]:
        base = mp.RegisterBase(BASE, self.weights, sha256(b"smollm2-config"), "LlamaForCausalLM", 134_515_008,
                               8_192, "apache-2.0")
        return [world.ledger.tx(self.key, mp.REGISTER_BASE, base)]

    def act(self, world: World) -> list[Tx]:
        versions = world.datanet_versions()
        if versions == 0 or (self.live is not None and self.live.datanet_version == versions):
            return []
        number = (self.live.version if self.live else 0) + 1
        published = Published(number, versions, sha256(f"{self.name}/adapter/{number}".encode()))
        pub = mp.PublishAdapter(ADAPTER, BASE, published.adapter_hash, world.datanet, versions,
                                sha256(b"hyperparams"), sha256(f"card/{number}".encode()), 8,
                                world.config.price_per_1k, bytes(32))
        tx = world.ledger.tx(self.key, mp.PUBLISH_ADAPTER, pub)
        self.pending = (tx.id, published)
        return [tx]

    def observe(self, world: World, outcome: Outcome) -> None:
        if self.pending is not None and outcome.codes.get(self.pending[0]) == 0:
            self.live = self.pending[1]
            world.serve(self.live.datanet_version)
        self.pending = None


class Consumer(Actor):
    role, side = "consumer", "buyer"

    def funds(self, c: EconomyConfig) -> tuple[int, int]:
        return c.consumer_prepaid + 10 * UNIT, 0

    @property
    def key_hash(self) -> bytes:
        return sha256(b"sim-api-key/" + self.address)

    def setup(self, world: World) -> list[Tx]:
        c = world.config
        return [world.ledger.tx(self.key, bp.DEPOSIT, bp.Amount(c.consumer_prepaid)),
                world.ledger.tx(self.key, bp.AUTHORIZE_KEY, bp.AuthorizeKey(
                    self.key_hash, world.provider_address, c.consumer_prepaid, 0))]

    def act(self, world: World) -> list[Tx]:
        if world.attributor is None:
            return []
        for _ in range(self.count(world.config.requests_per_consumer)):
            query = tuple(self.rng.choice(pool) for pool in QUERY_POOLS[:1 + int(self.rng.random() * 3)])
            world.requests.append(Request(self.key_hash, self.rng.randint(20, 120), self.rng.randint(100, 700), query))
        return []


class ServingProvider(Actor):
    role = "serving provider"

    def act(self, world: World) -> list[Tx]:
        requests, world.requests = world.requests, []
        builder, engine = world.builder.live, world.attributor
        if not requests or builder is None or engine is None:
            return []
        receipts = []
        for n, r in enumerate(requests):
            rid = sha256(f"{self.name}/{world.height + 1}/{n}".encode())
            shares = engine.shares(rid, r.query)
            receipts.append(bp.Receipt(rid, r.key_hash, ADAPTER, builder.version, world.builder.weights,
                                       builder.adapter_hash, r.prompt_tokens, r.completion_tokens, [],
                                       sha256(rid + b"/attribution") if shares else bp.NO_ATTRIBUTION, shares))
        per_tx = world.param("billing_max_receipts_per_tx")
        return [world.ledger.tx(self.key, bp.SUBMIT_RECEIPTS, bp.SubmitReceipts(receipts[i:i + per_tx]))
                for i in range(0, len(receipts), per_tx)]
