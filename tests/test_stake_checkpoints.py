"""Stake checkpoints (chain/accounts.py): the bonded stake of any address, and the total, at any past block.

Governance weighs votes by them, so they are checked against the plain record of each block's stakes
over random stake and unstake sequences, and the rows they cost are counted.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.chain import accounts
from ailedger.chain.accounts import STAKE, UNSTAKE, Amount
from ailedger.chain.genesis import Allocation
from ailedger.core.keys import KeyPair
from tests.datanet_sim import Sim

KEYS = [KeyPair.from_seed(bytes([0x70 + i]) * 32) for i in range(3)]
ALLOC = [Allocation(k.address, 10**9, 1_000 * (i + 1)) for i, k in enumerate(KEYS)]

step = st.lists(st.tuples(st.integers(0, 2), st.booleans(), st.integers(1, 3_000)), max_size=4)


@settings(max_examples=25, deadline=None)
@given(st.lists(step, min_size=1, max_size=8))
def test_stake_at_matches_the_stake_each_block_ended_with(blocks: list[list[tuple[int, bool, int]]]) -> None:
    sim = Sim(list(ALLOC))
    seen = [[sim.stake(k) for k in KEYS]]
    for txs in blocks:
        sim.block(*[(KEYS[i], STAKE if bond else UNSTAKE, Amount(amount)) for i, bond, amount in txs])
        seen.append([sim.stake(k) for k in KEYS])
    for height, stakes in enumerate(seen):
        assert [accounts.stake_at(sim.state, k.address, height) for k in KEYS] == stakes
        assert accounts.total_stake_at(sim.state, height) == sum(stakes)
    assert accounts.stake_at(sim.state, KEYS[0].address, 10**6) == seen[-1][0]


def test_one_checkpoint_per_address_per_block_and_none_without_a_change() -> None:
    sim = Sim(list(ALLOC))
    assert accounts.total_stake(sim.state) == 6_000
    sim.ok((KEYS[0], STAKE, Amount(5)), (KEYS[0], STAKE, Amount(7)), (KEYS[0], UNSTAKE, Amount(2)))
    rows = {k for k, _ in sim.state.items() if k.startswith(b"stk/")}
    assert rows == {accounts.TOTAL_STAKE_KEY, accounts.TOTAL_COUNT_KEY, accounts.TOTAL_ENTRY_PREFIX + bytes(4),
                    accounts.STAKE_COUNT_PREFIX + KEYS[0].address,
                    accounts.STAKE_ENTRY_PREFIX + KEYS[0].address + bytes(4)}
    assert accounts.stake_at(sim.state, KEYS[0].address, 0) == 1_000
    assert accounts.stake_at(sim.state, KEYS[0].address, 1) == 1_010
    assert accounts.stake_at(sim.state, KEYS[1].address, 1) == 2_000
