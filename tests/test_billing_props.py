"""Random billing histories: nothing goes negative, nothing is minted or burned, no charge exceeds a cap.

Hypothesis drives deposit / withdraw / authorize_key / revoke_key / submit_receipts over a few
accounts and two providers, valid and invalid mixed (too much, unknown or foreign keys, revoked or
expiring keys, unknown models, wrong hashes, duplicate ids, oversized batches), with empty blocks so
withdrawals release and keys expire. After every block: the total supply (balances, stakes,
Datanet escrow, prepaid balances, withdrawing buckets and billing escrow) is what it was; every
receipt's charge is at most its fee; every key's spent is at most its allowance; the escrow is the
sum of what receipts charged, all of it settled in the block that stored it (the escrow is empty after
every block); each account's live-key count matches its keys. At the end an
independent replay gives the same state bit for bit. A balance that went negative would fail to
pack into its u64 and surface as an unhandled exception.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.billing import payloads as b
from ailedger.billing import views
from ailedger.chain.state import State
from ailedger.core.keys import KeyPair
from ailedger.settlement import views as settlement
from tests.billing_sim import CALLER, CALLER2, LEGAL2, POOR, PROVIDER, PROVIDER2, UNIT, kh, receipt, world
from tests.datanet_sim import PROPOSER, RUNTIME, Sim
from tests.models_sim import assert_replay_matches, h, total_supply

ACCOUNTS = [CALLER, CALLER2, POOR]
PROVIDERS = [PROVIDER, PROVIDER2]
SENDERS = ACCOUNTS + PROVIDERS

amount = st.sampled_from([1, 999, 5_000, 300_000, 2 * UNIT, 60 * UNIT])
key_ref = st.integers(0, 5)  # kh(0..5); a key may be authorized by anyone first, then it is taken
model = st.sampled_from([("legal", 1), ("legal", 1), ("legal", 2), ("smollm2", 0), ("old", 1), ("nope", 1),
                         ("legal", 3), ("bad-hash", 1)])
tokens = st.tuples(st.sampled_from([0, 1, 7, 999, 40_000]), st.sampled_from([0, 3, 501, 2_000_000]))
one_receipt = st.tuples(st.integers(0, 60), key_ref, model, tokens, st.sampled_from([0, 0, 0, 1, 2, 3]))

ops = st.one_of(
    st.tuples(st.just("receipts"), st.sampled_from([3, 3, 4]), st.lists(one_receipt, min_size=1, max_size=4)),
    st.tuples(st.just("deposit"), st.integers(0, 2), amount),
    st.tuples(st.just("withdraw"), st.integers(0, 2), amount),
    st.tuples(st.just("authorize"), st.integers(0, 2), key_ref, st.integers(0, 1),
              st.sampled_from([0, 1, 700, 10**5, 10 * UNIT]), st.sampled_from([0, 0, 1, 3, -1])),
    st.tuples(st.just("revoke"), st.integers(0, 4), key_ref),
    st.tuples(st.just("receipts"), st.sampled_from([3, 3, 3, 4, 4, 0]), st.lists(one_receipt, max_size=7)),
)
blocks = st.lists(ops, max_size=6)
plans = st.lists(blocks, min_size=2, max_size=10)


@pytest.fixture(scope="module")
def template() -> Sim:
    """The billing world, plus: CALLER prepaid 1 unit with kh(0) (PROVIDER, 100,000) and kh(1) (PROVIDER2,
    10 units); CALLER2 prepaid 5,000 with kh(2) (PROVIDER, 700) and kh(3) (PROVIDER, last height +4).
    kh(4) and kh(5) are free for the plan to authorize."""
    sim = world()
    sim.ok((CALLER, b.DEPOSIT, b.Amount(UNIT)), (CALLER2, b.DEPOSIT, b.Amount(5_000)))
    sim.ok((CALLER, b.AUTHORIZE_KEY, b.AuthorizeKey(kh(0), PROVIDER.address, 10**5, 0)),
           (CALLER, b.AUTHORIZE_KEY, b.AuthorizeKey(kh(1), PROVIDER2.address, 10 * UNIT, 0)),
           (CALLER2, b.AUTHORIZE_KEY, b.AuthorizeKey(kh(2), PROVIDER.address, 700, 0)),
           (CALLER2, b.AUTHORIZE_KEY, b.AuthorizeKey(kh(3), PROVIDER.address, UNIT, sim.height + 5)))
    return sim


def to_tx(op: tuple[Any, ...], height: int) -> tuple[KeyPair, int, Any]:
    kind = op[0]
    if kind == "deposit":
        return ACCOUNTS[op[1]], b.DEPOSIT, b.Amount(op[2])
    if kind == "withdraw":
        return ACCOUNTS[op[1]], b.WITHDRAW, b.Amount(op[2])
    if kind == "authorize":
        expires = 0 if op[5] == 0 else height + op[5]  # -1: already past, refused
        return ACCOUNTS[op[1]], b.AUTHORIZE_KEY, b.AuthorizeKey(kh(op[2]), PROVIDERS[op[3]].address, op[4], expires)
    if kind == "revoke":
        return SENDERS[op[1]], b.REVOKE_KEY, b.KeyRef(kh(op[2]))
    rs = []
    for i, k, (name, version), (prompt, completion), cites in op[2]:
        bad = name == "bad-hash"
        r = receipt(i, kh(k), (prompt, completion), "legal" if bad else name, version,
                    citations=[h(60 + c) for c in range(cites)])
        rs.append(b.Receipt(r.id, r.key_hash, r.model, r.version, r.base_hash, LEGAL2 if bad else r.adapter_hash,
                            r.prompt_tokens, r.completion_tokens, r.citations))
    return SENDERS[op[1]], b.SUBMIT_RECEIPTS, b.SubmitReceipts(rs)


def check_invariants(state: State, height: int, total: int) -> None:
    assert total_supply(state) == total
    charged = 0
    for r in views.receipts_in_order(state, 0, views.receipt_count(state)):
        assert 0 <= r.charged <= r.fee
        assert r.status in (0, 1) or r.charged == r.fee == r.price == 0  # a rejection charges nothing
        assert (r.status == 0) == (r.status < 2 and r.charged == r.fee)
        charged += r.charged
    assert views.escrowed(state) == 0 and settlement.conservation(state)["settled"] == charged
    spent = 0
    for k in range(6):
        key = views.get_key(state, kh(k))
        if key is not None:
            assert 0 <= key.spent <= key.allowance
            spent += key.spent
    assert spent == charged
    for who in ACCOUNTS:
        a = views.get_account(state, who.address)
        assert a.prepaid >= 0 and a.withdrawing >= 0 and (a.withdrawing == 0 or a.release_height > height)
        keys = views.account_keys(state, who.address)
        assert len(keys) == a.keys
        # after block `height`, a key is live unless revoked or its last height's end_block has run
        assert a.live_keys == sum(1 for x in keys if not x.revoked and not (x.expires and x.expires <= height))


@settings(max_examples=120, deadline=None)
@given(plan=plans)
def test_random_billing_histories_conserve_value_and_replay(template: Sim, plan: list[list[tuple[Any, ...]]]) -> None:
    sim = template.copy()
    total = total_supply(sim.state)
    for block_ops in [*plan, [], [], [], [], [], []]:  # trailing blocks let withdrawals release, keys expire
        pending: Counter[bytes] = Counter()
        txs = [sim.tx(*to_tx(op, sim.height + 1), pending=pending) for op in block_ops]
        built = RUNTIME.build_block(sim.state, sim.parent, sim.parent.timestamp_ms + 1, PROPOSER, txs)
        assert built.block is not None
        assert all(exc.code.number // 100 == 2 for _, exc in built.rejected)  # only admission (nonce, balance)
        sim.parent = built.block.header
        sim.blocks.append(built.block)
        check_invariants(sim.state, sim.height, total)
    for who in ACCOUNTS:
        assert views.get_account(sim.state, who.address).withdrawing == 0  # every release has happened
    assert_replay_matches(sim)
