"""Random receipts, fee splits, shares, record fates and reputations: every micro-unit is accounted for.

Hypothesis draws a Datanet fee split, a vesting threshold (0: nobody vests; 7,000: most contributors do), then
blocks of receipts (adapter or base-only calls of random sizes, so some run short of funds; shares over accepted,
rejected and unknown records with random basis points, or none), retractions of accepted records and
withdrawals. After every block: the total supply (balances, stakes, Datanet escrow and pools, prepaid balances,
billing escrow, earnings balances and vesting) is what it was; the billing escrow is empty (every receipt was
settled in its own block); the conservation check balances; and, without vesting, each address earned exactly
what the one-receipt-at-a-time reference (settlement/reference.py) says, the caller got back exactly its
refunds. At the end an independent replay gives the same state bit for bit.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.billing import payloads as b
from ailedger.billing import views as bv
from ailedger.chain import accounts
from ailedger.datanet import rules as dn_rules
from ailedger.datanet import state as dn
from ailedger.settlement import views
from ailedger.settlement.reference import settle_receipt
from ailedger.settlement.txs import WITHDRAW, Withdraw
from tests.datanet_sim import PROPOSER, rh
from tests.test_settlement_world import (
    BUILDER,
    C1,
    C2,
    C3,
    C4,
    CURATOR,
    PROVIDER,
    RETRACT,
    RUNTIME,
    VAL1,
    VAL2,
    World,
    earnings,
    prepaid,
    receipt,
    replay,
    retraction,
    supply,
    world,
)

RECORDS = [rh(i) for i in range(1, 7)]  # rh(1)..rh(4) accepted, rh(5) rejected, rh(6) unknown
PAYEES = [C1, C2, C3, C4, BUILDER, PROVIDER, VAL1, VAL2]


@st.composite
def bp_split(draw: st.DrawFn, n: int) -> list[int]:
    cuts = sorted(draw(st.lists(st.integers(0, 10_000), min_size=n - 1, max_size=n - 1)))
    return [hi - lo for lo, hi in zip([0, *cuts], [*cuts, 10_000], strict=True)]


@st.composite
def shares(draw: st.DrawFn) -> list[tuple[bytes, int]]:
    recs = sorted(set(draw(st.lists(st.sampled_from(RECORDS), max_size=6))))
    return list(zip(recs, draw(bp_split(len(recs))), strict=True)) if recs else []


one_receipt = st.tuples(st.sampled_from([1, 7, 999, 1_000, 12_345, 4_000_000]), shares(), st.sampled_from([1, 1, 1, 0]))
ops = st.one_of(
    st.tuples(st.just("receipts"), st.lists(one_receipt, min_size=1, max_size=6)),
    st.tuples(st.just("retract"), st.integers(1, 4)),
    st.tuples(st.just("withdraw"), st.integers(0, 3), st.sampled_from([1, 1_000, 10**9])),
)
plans = st.lists(st.lists(ops, max_size=3), min_size=1, max_size=6)


def expected(w: World, ids: list[bytes], split: tuple[int, int, int, int]) -> tuple[dict[bytes, int], int]:
    """(earned per address, refunded) for the block's receipts, one receipt at a time (reference.py)."""
    owner = {r: k.address for r, k in {rh(1): C1, rh(2): C1, rh(3): C2, rh(4): C3, rh(5): C4}.items()}
    earned: dict[bytes, int] = defaultdict(int)
    refunded = pool = 0
    for rid in ids:
        r = bv.get_receipt(w.state, rid)
        assert r is not None
        if r.charged == 0:
            continue
        eligible = {x.record for x in r.shares if (rs := dn.get_record_state(w.state, "facts", x.record)) is not None
                    and rs.status == dn.Status.ACCEPTED}
        p = settle_receipt(r.charged, split if r.version else (0, 0, 10_000, 0),
                           [(x.record, x.bp) for x in r.shares], eligible)
        for record, amount in p.data:
            earned[owner[record]] += amount
        earned[BUILDER.address] += p.model_owner
        earned[PROVIDER.address] += p.compute
        pool += p.validators
        refunded += p.refund
    stakes = [(v.address, accounts.get_account(w.state, v.address).stake) for v in (VAL1, VAL2)]
    for address, amount in dn_rules.split_pro_rata(pool, stakes):
        earned[address] += amount
    return earned, refunded


def to_tx(op: tuple[Any, ...], n: int) -> tuple[Any, int, Any]:
    if op[0] == "retract":
        return CURATOR, RETRACT, retraction("facts", rh(op[1]))
    if op[0] == "withdraw":
        who = [C1, C2, C3, PROVIDER][op[1]]
        return who, WITHDRAW, Withdraw(op[2])  # more than the earnings balance fails: nothing moves
    rs = [receipt(n * 10 + i, tokens, sh if version else None, version) for i, (tokens, sh, version) in
          enumerate(op[1])]
    return PROVIDER, b.SUBMIT_RECEIPTS, b.SubmitReceipts(rs)


@settings(max_examples=150, deadline=None)
@given(split=bp_split(4), threshold=st.sampled_from([0, 0, 7_000]), plan=plans)
def test_every_micro_unit_is_accounted_for(split: list[int], threshold: int, plan: list[list[tuple[Any, ...]]]) -> None:
    w = world(tuple(split), {"settlement_vesting_threshold_bps": threshold, "settlement_vesting_blocks": 2},  # type: ignore[arg-type]
              price=1_000_003)
    total = supply(w.state)
    n = 0
    for block_ops in [*plan, [], [], []]:  # trailing blocks release or forfeit what vests
        before = {k.address: earnings(w, k).earned for k in PAYEES}
        paid_before = prepaid(w)
        pending: Counter[bytes] = Counter()
        txs = []
        for op in block_ops:
            n += 1
            txs.append(w.tx(*to_tx(op, n), pending=pending))
        built = RUNTIME.build_block(w.state, w.parent, w.parent.timestamp_ms + 1, PROPOSER, txs)
        assert built.block is not None and not built.rejected
        w.parent = built.block.header
        w.blocks.append(built.block)
        assert supply(w.state) == total
        assert bv.escrowed(w.state) == 0 and bv.unsettled_count(w.state) == 0
        assert views.conservation(w.state)["conserved"]
        if threshold == 0:
            ids = [x.id for t in txs if t.type == b.SUBMIT_RECEIPTS
                   for x in b.SUBMIT_RECEIPTS_CODEC.decode(t.payload).receipts]
            want, refunded = expected(w, ids, tuple(split))  # type: ignore[arg-type]
            got = {k.address: earnings(w, k).earned - before[k.address] for k in PAYEES}
            assert got == {k.address: want.get(k.address, 0) for k in PAYEES}
            charged = sum(r.charged for i in ids if (r := bv.get_receipt(w.state, i)) is not None)
            assert prepaid(w) == paid_before - charged + refunded
    replay(w)
