"""Helpers for model, job and billing tests: payload builders, a Datanet with a snapshot, the total supply."""

from __future__ import annotations

from typing import Any

from ailedger.agents import views as agents
from ailedger.billing import views as billing
from ailedger.chain.state import State
from ailedger.core import errors
from ailedger.core.keys import KeyPair
from ailedger.datanet import payloads as d
from ailedger.governance import views as governance
from ailedger.market import views as jobs
from ailedger.models import payloads as m
from ailedger.settlement import views as settlement
from tests.datanet_sim import FEE, PROPOSER, RUNTIME, Sim, contribute, create, rh, supply, votes


def h(i: int) -> bytes:
    """A deterministic, non-zero 32-byte hash distinct from datanet_sim.rh."""
    return (0xA0000000 + i).to_bytes(4, "big") * 8


def base(name: str = "smollm2", weights: int = 1, **kw: Any) -> m.RegisterBase:
    return m.RegisterBase(name, kw.pop("weights_hash", h(weights)), kw.pop("config_hash", h(1000 + weights)),
                          kw.pop("architecture", "llama"), kw.pop("params_count", 134_515_008),
                          kw.pop("context_length", 8_192), kw.pop("licence", "apache-2.0"))


def adapter(name: str, adapter_hash: bytes, datanet: str = "news", version: int = 1, base_name: str = "smollm2",
            **kw: Any) -> m.PublishAdapter:
    return m.PublishAdapter(name, base_name, adapter_hash, datanet, version, kw.pop("hyperparams_hash", h(500)),
                            kw.pop("card_hash", h(501)), kw.pop("rank", 8), kw.pop("price", 2_000),
                            kw.pop("job_id", bytes(32)))


def datanet_with_versions(sim: Sim, owner: KeyPair, validator: KeyPair, contributor: KeyPair, name: str = "news",
                          batches: tuple[tuple[int, ...], ...] = ((1, 2), (3,))) -> None:
    """Datanet `name` (quorum 1, window 1); each batch is contributed, accepted, then frozen as a version."""
    sim.ok((owner, d.CREATE, create(name, quorum=1, window=1)))
    sim.ok((validator, d.REGISTER_VALIDATOR, d.Named(name)))
    for batch in batches:
        hashes = [rh(i) for i in batch]
        sim.ok((contributor, d.CONTRIBUTE, contribute(name, hashes)))
        sim.ok((validator, d.VOTE, votes(name, *[(x, 1) for x in hashes])))
        sim.ok((owner, d.SNAPSHOT, d.Named(name)))


def total_supply(state: State) -> int:
    """datanet_sim.supply (balances, stakes, unbonding, record escrow, pools) plus what jobs escrow, plus
    billing's holdings (prepaid balances, withdrawing buckets, the escrow of unsettled fees), plus
    settlement's (earnings balances and vesting), plus governance's (the treasury and held deposits), plus the
    compute market's (provider bonds and order escrow), plus the agents module's (task fees in escrow and
    the slashed-stake pool)."""
    return (supply(state) + jobs.escrowed(state) + jobs.market_holdings(state) + billing.holdings(state)
            + settlement.holdings(state) + governance.holdings(state) + agents.holdings(state))


def assert_fails_cleanly(sim: Sim, sender: KeyPair, tx_type: int, payload: Any, code: str) -> None:
    """One transaction in its own block fails with `code`; only the sender's and proposer's accounts change."""
    before = dict(sim.state.items())
    (receipt,) = sim.block((sender, tx_type, payload))
    assert receipt.code == errors.by_name(code).number and receipt.fee == FEE
    after = dict(sim.state.items())
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed <= {b"acct/" + sender.address, b"acct/" + PROPOSER.address}


def assert_replay_matches(sim: Sim) -> None:
    """Genesis plus the sim's blocks through validate_block give its state bit for bit."""
    fresh = RUNTIME.genesis_block(sim.genesis)[1]
    parent = sim.genesis_header
    for block in sim.blocks:
        RUNTIME.validate_block(fresh, parent, block)
        parent = block.header
    assert sorted(fresh.rows()) == sorted(sim.state.rows())
