"""Helpers for governance tests: a chain with three stakers and a funder, short periods, payload builders."""

from __future__ import annotations

from ailedger.chain.genesis import Allocation
from ailedger.core.keys import KeyPair
from ailedger.governance import payloads as g
from ailedger.governance.state import Header, get_header
from tests.datanet_sim import Sim

UNIT = 1_000_000
MIN_DEPOSIT = 10 * UNIT
ALICE, BOB, CAROL, DAVE = (KeyPair.from_seed(bytes([0x60 + i]) * 32) for i in range(4))
PARAMS = {"gov_min_deposit": MIN_DEPOSIT, "gov_deposit_period_blocks": 4, "gov_voting_period_blocks": 3,
          "gov_timelock_blocks": 2}
# stakes: Alice 50, Bob 30, Carol 20 (of 100 bonded); Dave holds no stake
ALLOC = [Allocation(ALICE.address, 1_000 * UNIT, 50 * UNIT), Allocation(BOB.address, 1_000 * UNIT, 30 * UNIT),
         Allocation(CAROL.address, 1_000 * UNIT, 20 * UNIT), Allocation(DAVE.address, 1_000 * UNIT)]

def world() -> Sim:
    return Sim(list(ALLOC), dict(PARAMS))


def change(*pairs: tuple[str, int], deposit: int = MIN_DEPOSIT, title: str = "tune") -> g.Propose:
    return g.Propose(g.Kind.PARAM_CHANGE, title, "why", deposit, [g.ParamChange(n, v) for n, v in pairs])


def text(deposit: int = MIN_DEPOSIT) -> g.Propose:
    return g.Propose(g.Kind.TEXT, "a statement", "stakers agree", deposit)


def spend(recipient: bytes, amount: int, deposit: int = MIN_DEPOSIT) -> g.Propose:
    return g.Propose(g.Kind.TREASURY_SPEND, "grant", "pay for audits", deposit, [], recipient, amount)


def vote(pid: int, option: int) -> g.Vote:
    return g.Vote(pid, option)


def header(sim: Sim, pid: int) -> Header:
    return get_header(sim.state, pid)
