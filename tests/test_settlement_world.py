"""Helpers for settlement tests (no tests here): a world with a Datanet of several contributors, an adapter
trained on it, a caller with a key for a provider; receipt builders; the total supply with settlement's holdings;
and `retraction`, the owner's takedown of an accepted record (datanet tx 0x0208).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ailedger.billing import payloads as b
from ailedger.billing.payloads import ReceiptShare
from ailedger.chain.block import BlockHeader
from ailedger.chain.genesis import Allocation
from ailedger.chain.runtime import Runtime
from ailedger.chain.state import State
from ailedger.chain.tx import Tx, decode_tx, sign_tx
from ailedger.core.keys import KeyPair
from ailedger.datanet import payloads as d
from ailedger.models import payloads as m
from ailedger.modules import default_modules
from ailedger.settlement import state as st
from tests.conftest import key
from tests.datanet_sim import CHAIN, PROPOSER, Sim, contribute, create, rh, votes
from tests.models_sim import adapter, base, h, total_supply

CURATOR, VAL1, VAL2, BUILDER = key(61), key(62), key(63), key(64)
C1, C2, C3, C4 = key(65), key(66), key(67), key(68)
CALLER, PROVIDER = key(69), key(70)
UNIT = 1_000_000
KEY = (0xD0000001).to_bytes(4, "big") * 8
ADAPTER = h(20)
SPLIT = (5_000, 2_000, 2_000, 1_000)
PARAMS = {"datanet_min_window_blocks": 1, "billing_max_receipts_per_tx": 64, "settlement_vesting_blocks": 3,
          "settlement_vesting_threshold_bps": 4_000}
ALLOC = [Allocation(k.address, 100 * UNIT) for k in (CURATOR, BUILDER, C1, C2, C3, C4, CALLER, PROVIDER)]
ALLOC += [Allocation(VAL1.address, UNIT, 3 * UNIT), Allocation(VAL2.address, UNIT, UNIT)]
# records: C1 owns rh(1), rh(2); C2 rh(3); C3 rh(4); C4 rh(5) (rejected by the vote); rh(6) never contributed
OWNERS = {rh(1): C1, rh(2): C1, rh(3): C2, rh(4): C3, rh(5): C4}


RETRACT = d.RETRACT


def retraction(name: str, record: bytes) -> d.Retract:
    """The Datanet's owner takes `record` down (a takedown: its contributor loses reputation too)."""
    return d.Retract(name, [record], d.RetractReason.HARMFUL)


RUNTIME = Runtime(default_modules())
CODECS = {type_id: kind.codec for type_id, kind in RUNTIME.tx_types.items()}


class World(Sim):
    """datanet_sim.Sim with a settlement-sized fee and a copy that keeps the blocks."""

    def tx(self, k: KeyPair, tx_type: int, payload: Any, pending: Counter[bytes] | None = None,
           fee: int = 1_000) -> Tx:
        from ailedger.chain.accounts import get_account

        nonce = get_account(self.state, k.address).nonce + (pending[k.address] if pending is not None else 0)
        if pending is not None:
            pending[k.address] += 1
        return decode_tx(sign_tx(k, CHAIN, nonce, fee, tx_type, CODECS[tx_type].encode(payload)))

    def block_of(self, txs: list[Tx]) -> list[Any]:
        built = RUNTIME.build_block(self.state, self.parent, self.parent.timestamp_ms + 1_000, PROPOSER, txs)
        assert built.block is not None and not built.rejected, built.rejected
        self.parent = built.block.header
        self.blocks.append(built.block)
        return built.receipts

    def copy(self) -> World:
        other = World.__new__(World)
        other.__dict__.update(self.__dict__)
        other.state = State(self.state.rows())
        other.blocks = list(self.blocks)
        return other


def world(split: tuple[int, int, int, int] = SPLIT, params: dict[str, int] | None = None,
          price: int = 1_000_000) -> World:
    """Datanet `facts` (split as given; rh(1)..rh(4) accepted, rh(5) rejected); adapter `legal`@1 on it at
    `price` per 1k tokens, owned by BUILDER; base `smollm2` (billing_base_price_per_1k 1,000); CALLER prepaid
    50 units with key KEY for PROVIDER."""
    w = World(ALLOC, {**PARAMS, "billing_base_price_per_1k": 1_000, **(params or {})})
    w.ok((CURATOR, d.CREATE, create("facts", quorum=1, window=1, split=split)))
    w.ok((VAL1, d.REGISTER_VALIDATOR, d.Named("facts")), (VAL2, d.REGISTER_VALIDATOR, d.Named("facts")))
    w.ok(*[(c, d.CONTRIBUTE, contribute("facts", [r for r, o in OWNERS.items() if o == c])) for c in (C1, C2, C3, C4)])
    w.ok((VAL1, d.VOTE, votes("facts", *[(r, int(r != rh(5))) for r in OWNERS])))
    w.until(w.height + 2)
    w.ok((CURATOR, d.SNAPSHOT, d.Named("facts")))
    w.ok((CURATOR, m.REGISTER_BASE, base()))
    w.ok((BUILDER, m.PUBLISH_ADAPTER, adapter("legal", ADAPTER, datanet="facts", price=price)))
    w.ok((CALLER, b.DEPOSIT, b.Amount(50 * UNIT)))
    w.ok((CALLER, b.AUTHORIZE_KEY, b.AuthorizeKey(KEY, PROVIDER.address, 50 * UNIT, 0)))
    return w


def rid(i: int) -> bytes:
    return (0xE0000000 + i).to_bytes(4, "big") * 8


def receipt(i: int, tokens: int, shares: list[tuple[bytes, int]] | None = None, version: int = 1) -> b.Receipt:
    """Receipt rid(i): `tokens` completion tokens of legal@1 (version 0: the base), paying `shares` (record, bp)."""
    shares = sorted(shares or [])
    return b.Receipt(rid(i), KEY, "legal" if version else "smollm2", version, h(1), ADAPTER if version else bytes(32),
                     0, tokens, [], h(99) if shares else bytes(32), [ReceiptShare(r, bp) for r, bp in shares])


def settle(w: World, *receipts: b.Receipt) -> None:
    w.ok((PROVIDER, b.SUBMIT_RECEIPTS, b.SubmitReceipts(list(receipts))))


def earnings(w: World, k: KeyPair) -> st.Earnings:
    return st.get_earnings(w.state, k.address)


def supply(state: State) -> int:
    """The total supply: models_sim.total_supply (which counts settlement's earnings balances and vesting)."""
    return total_supply(state)


def prepaid(w: World) -> int:
    from ailedger.billing import views as bv

    return bv.get_account(w.state, CALLER.address).prepaid


def replay(w: World) -> None:
    """Genesis plus the world's blocks through validate_block give its state bit for bit."""
    fresh = RUNTIME.genesis_block(w.genesis)[1]
    parent: BlockHeader = w.genesis_header
    for block in w.blocks:
        RUNTIME.validate_block(fresh, parent, block)
        parent = block.header
    assert sorted(fresh.rows()) == sorted(w.state.rows())
