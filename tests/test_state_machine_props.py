"""Property tests of the state machine on random transaction sequences.

Why random sequences: the rules are simple one at a time; the bugs live in their interplay (a fee
that empties the balance a transfer needed, an unstake in the block its release is due, a nonce
gap after a refused transaction). Hypothesis throws such sequences at `build_block`, then checks
the ledger-wide invariants and that an independent replay with `validate_block` agrees bit for bit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.chain.accounts import (
    AMOUNT_CODEC,
    PREFIX,
    STAKE,
    TRANSFER,
    TRANSFER_CODEC,
    UNSTAKE,
    Account,
    AccountsModule,
    Amount,
    Transfer,
    decode_account,
    get_account,
    put_account,
)
from ailedger.chain.block import Block, BlockHeader
from ailedger.chain.genesis import Allocation, Genesis
from ailedger.chain.runtime import Runtime
from ailedger.chain.state import State
from ailedger.chain.tx import Tx, decode_tx, sign_tx
from ailedger.core import errors
from ailedger.core.encoding import MAX_AMOUNT
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.core.merkle import merkle_root

CHAIN = "props"
UNBONDING = 2
MIN_FEE = 10
KEYS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(4)]  # KEYS[3] starts unfunded
PROPOSER = KeyPair.from_seed(b"\x77" * 32)
STRANGER = KeyPair.from_seed(b"\x55" * 32).address
RECIPIENTS = [k.address for k in KEYS] + [PROPOSER.address, STRANGER]
GENESIS = Genesis(CHAIN, 1_000, PROPOSER.public_key,
                  [Allocation(KEYS[0].address, 10**9), Allocation(KEYS[1].address, 50_000, 20_000),
                   Allocation(KEYS[2].address, 2**62)],
                  {"unbonding_blocks": UNBONDING, "min_fee": MIN_FEE})
RUNTIME = Runtime([AccountsModule()])

specs = st.fixed_dictionaries({
    "sender": st.sampled_from([0, 0, 1, 1, 2, 2, 3]),
    "kind": st.sampled_from(["transfer"] * 4 + ["stake", "stake", "unstake", "unstake", "unknown", "garbage"]),
    "to": st.integers(0, len(RECIPIENTS) - 1),
    "amount": st.one_of(st.sampled_from([0, 1, 7, 1_000, 20_000, 2**62, MAX_AMOUNT]), st.integers(0, 100_000),
                        st.integers(0, MAX_AMOUNT)),
    "fee": st.sampled_from([MIN_FEE] * 6 + [1_000] * 2 + [0, MIN_FEE - 1, 10**8, MAX_AMOUNT]),
    "nonce": st.sampled_from(["next"] * 8 + ["replay", "gap"]),
    "chain": st.sampled_from([CHAIN] * 12 + ["other"]),
    "bad_sig": st.sampled_from([False] * 12 + [True]),
})
plans = st.lists(st.lists(specs, max_size=10), min_size=1, max_size=6)


def make_tx(spec: dict[str, Any], state: State, pending: Counter[int]) -> tuple[Tx, str | None]:
    """Sign one transaction as the spec says; returns it with the refusal it must get, if any."""
    key = KEYS[spec["sender"]]
    nonce = get_account(state, key.address).nonce + pending[spec["sender"]]
    if spec["nonce"] == "next":
        pending[spec["sender"]] += 1
    elif spec["nonce"] == "replay" and nonce > 0:
        nonce -= 1
    else:
        nonce += 5
    kind = spec["kind"]
    tx_type = {"transfer": TRANSFER, "garbage": TRANSFER, "stake": STAKE, "unstake": UNSTAKE, "unknown": 0x01FF}[kind]
    if kind == "transfer":
        payload = TRANSFER_CODEC.encode(Transfer(RECIPIENTS[spec["to"]], spec["amount"]))
    elif kind == "garbage":
        payload = b"\x01\x02"
    else:
        payload = AMOUNT_CODEC.encode(Amount(spec["amount"]))
    raw = sign_tx(key, spec["chain"], nonce, spec["fee"], tx_type, payload)
    if spec["bad_sig"]:
        raw = raw[:-1] + bytes([raw[-1] ^ 1])
    expected = None
    if spec["chain"] != CHAIN:
        expected = errors.WRONG_CHAIN.name
    elif kind == "unknown":
        expected = errors.UNKNOWN_TX_TYPE.name
    elif kind == "garbage":
        expected = "payload"
    elif spec["bad_sig"]:
        expected = errors.BAD_SIGNATURE.name
    return decode_tx(raw), expected


def accounts_of(state: State) -> dict[bytes, Any]:
    return {k[len(PREFIX):]: decode_account(v) for k, v in state.items() if k.startswith(PREFIX)}


def supply(state: State) -> int:
    return sum(a.balance + a.stake + a.unbonding for a in accounts_of(state).values())


@dataclass
class Chain:
    genesis_header: BlockHeader
    blocks: list[Block] = field(default_factory=list)
    state: State = field(default_factory=State)


def run_plan(plan: list[list[dict[str, Any]]]) -> Chain:
    """Build one block per plan entry, checking the invariants after each."""
    block0, state = RUNTIME.genesis_block(GENESIS)
    chain = Chain(block0.header, state=state)
    total = supply(state)
    parent = block0.header
    unstakes: list[tuple[int, bytes, int]] = []  # (release height, address, amount)
    nonces: Counter[bytes] = Counter()
    fees = received = 0
    for specs_ in plan:
        pending: Counter[int] = Counter()
        made = [make_tx(s, state, pending) for s in specs_]
        built = RUNTIME.build_block(state, parent, parent.timestamp_ms + 1_000, PROPOSER, [t for t, _ in made])
        assert built.block is not None
        h = built.block.header
        assert state.root() == h.state_root and h.tx_count == len(built.included)
        assert len(built.included) + len(built.rejected) == len(made)
        refused = {tx.id: exc for tx, exc in built.rejected}
        for tx, expected in made:
            if expected == "payload":  # an undecodable payload keeps its encoding code (1xx) or is bad_payload
                assert refused[tx.id].code in (errors.BAD_PAYLOAD, errors.TRUNCATED, errors.TRAILING_BYTES)
            elif expected is not None:
                assert refused[tx.id].code.name == expected
        assert all(exc.code.number // 100 in (1, 2) for exc in refused.values())  # encoding or admission
        for tx, receipt in zip(built.included, built.receipts, strict=True):
            assert receipt.fee == tx.fee >= MIN_FEE and receipt.tx_id == tx.id
            fees += tx.fee
            nonces[tx.sender_address] += 1
            if receipt.ok and tx.type == UNSTAKE:
                unstakes.append((h.height + UNBONDING, tx.sender_address, AMOUNT_CODEC.decode(tx.payload).amount))
            if receipt.ok and tx.type == TRANSFER:
                p = TRANSFER_CODEC.decode(tx.payload)
                received += p.amount if p.to == PROPOSER.address else 0
        accounts = accounts_of(state)
        assert supply(state) == total
        for addr, a in accounts.items():
            assert min(a.balance, a.stake, a.unbonding) >= 0 and max(a.balance, a.stake, a.unbonding) <= MAX_AMOUNT
            assert a.nonce == nonces[addr]
            assert a.unbonding == sum(amt for rel, who, amt in unstakes if who == addr and rel > h.height)
        assert get_account(state, PROPOSER.address).balance == fees + received
        chain.blocks.append(built.block)
        parent = h
    return chain


@settings(max_examples=300, deadline=None)
@given(plan=plans)
def test_random_sequences_keep_invariants_and_replay_bit_for_bit(plan: list[list[dict[str, Any]]]) -> None:
    chain = run_plan(plan)
    block0, fresh = RUNTIME.genesis_block(GENESIS)
    assert block0.header == chain.genesis_header
    parent = block0.header
    for block in chain.blocks:
        RUNTIME.validate_block(fresh, parent, block)
        assert fresh.root() == block.header.state_root
        parent = block.header
    assert sorted(fresh.rows()) == sorted(chain.state.rows())


def test_unbonding_is_released_after_unbonding_blocks() -> None:
    """A fixed case of what the random test checks, readable as an example of the rule."""
    stake = {"sender": 1, "kind": "unstake", "to": 0, "amount": 5_000, "fee": MIN_FEE, "nonce": "next",
             "chain": CHAIN, "bad_sig": False}
    chain = run_plan([[stake], [], []])
    unbonding = [get_account(s, KEYS[1].address).unbonding for s in _states_after(chain)]
    assert unbonding == [5_000, 5_000, 0]  # unstaked at height 1, released at the end of height 1 + 2


def _states_after(chain: Chain) -> list[State]:
    block0, state = RUNTIME.genesis_block(GENESIS)
    parent, out = block0.header, []
    for block in chain.blocks:
        RUNTIME.validate_block(state, parent, block)
        parent = block.header
        out.append(State(state.rows()))
    return out


def _flip(b: bytes, i: int = 0) -> bytes:
    return b[:i] + bytes([b[i] ^ 0x80]) + b[i + 1:]


def tamper(block: Block, how: str, pick: int) -> Block:
    """A changed copy of `block`, re-sealed by the real proposer so that deeper checks are reached."""
    h, txs = block.header, list(block.txs)
    if how == "unsigned":
        return Block(replace(h, state_root=_flip(h.state_root)), block.signature, txs)
    if how == "state_root":
        h = replace(h, state_root=_flip(h.state_root))
    elif how == "receipts_root":
        h = replace(h, receipts_root=_flip(h.receipts_root))
    elif how == "tx_root":
        h = replace(h, tx_root=_flip(h.tx_root))
    else:
        k = pick % len(txs)
        if how == "tx_bytes":
            txs[k] = _flip(txs[k], pick % len(txs[k]))
        elif how == "tx_signature":
            tx = decode_tx(txs[k])
            txs[k] = tx.body + KEYS[0].sign(b"ailedger/tx/v1" + tx.body)  # a valid signature, by the wrong key
            if tx.sender == KEYS[0].public_key:
                txs[k] = tx.body + KEYS[0].sign(b"another message")
        elif how == "drop_tx":
            del txs[k]
        h = replace(h, tx_count=len(txs), tx_root=merkle_root(txs))
    return Block(h, h.sign(PROPOSER), txs)


HOW = ["unsigned", "state_root", "receipts_root", "tx_root", "tx_bytes", "tx_signature", "drop_tx"]


@settings(max_examples=300, deadline=None)
@given(plan=plans, at=st.integers(0, 100), how=st.sampled_from(HOW), pick=st.integers(0, 10**6))
def test_tampered_block_is_refused_and_leaves_state_unchanged(plan: list[list[dict[str, Any]]], at: int,
                                                             how: str, pick: int) -> None:
    chain = run_plan(plan)
    candidates = list(range(len(chain.blocks)))
    if how in ("tx_bytes", "tx_signature", "drop_tx"):
        candidates = [i for i in candidates if chain.blocks[i].txs] or candidates
        how = how if chain.blocks[candidates[0]].txs else "state_root"
    j = candidates[at % len(candidates)]
    block0, state = RUNTIME.genesis_block(GENESIS)
    parent = block0.header
    for block in chain.blocks[:j]:
        RUNTIME.validate_block(state, parent, block)
        parent = block.header
    root, rows = state.root(), sorted(state.rows())
    with pytest.raises(LedgerError):
        RUNTIME.validate_block(state, parent, tamper(chain.blocks[j], how, pick))
    assert state.root() == root and sorted(state.rows()) == rows
    RUNTIME.validate_block(state, parent, chain.blocks[j])  # the honest block still applies afterwards
    assert state.root() == chain.blocks[j].header.state_root


# -- the worked examples of docs/fees.md ------------------------------------------------------------

ALICE, BOB = KEYS[0], KEYS[1]
FEE_ROWS = [  # amount, fee, nonce, included?, code, Alice's balance and nonce after, Bob's balance, proposer's
    (5_000, 1_000, 4, True, "ok", 4_000, 5, 5_000, 1_000),
    (9_500, 1_000, 4, True, "insufficient_balance", 9_000, 5, 0, 1_000),
    (5_000, 999, 4, False, "fee_too_low", 10_000, 4, 0, 0),
    (5_000, 1_000, 3, False, "nonce_replayed", 10_000, 4, 0, 0),
    (5_000, 20_000, 4, False, "insufficient_balance", 10_000, 4, 0, 0),
]


def _alice_with_nonce_4() -> tuple[BlockHeader, State]:
    block0, state = RUNTIME.genesis_block(Genesis(CHAIN, 1_000, PROPOSER.public_key,
                                                  [Allocation(ALICE.address, 10_000)]))
    put_account(state, ALICE.address, Account(10_000, 4))
    state.commit()
    return block0.header, state


def _send(amount: int, fee: int, nonce: int) -> Tx:
    return decode_tx(sign_tx(ALICE, CHAIN, nonce, fee, TRANSFER, TRANSFER_CODEC.encode(Transfer(BOB.address, amount))))


@pytest.mark.parametrize(("amount", "fee", "nonce", "included", "code", "balance", "next_nonce", "bob", "paid"),
                         FEE_ROWS)
def test_fee_rule_examples(amount: int, fee: int, nonce: int, included: bool, code: str, balance: int,
                           next_nonce: int, bob: int, paid: int) -> None:
    parent, state = _alice_with_nonce_4()
    built = RUNTIME.build_block(state, parent, 2_000, PROPOSER, [_send(amount, fee, nonce)])
    if included:
        (receipt,) = built.receipts
        assert receipt.fee == fee and receipt.code == (0 if code == "ok" else errors.by_name(code).number)
    else:
        (refusal,) = built.rejected
        assert not built.included and refusal[1].code.name == code
    assert get_account(state, ALICE.address) == Account(balance, next_nonce)
    assert get_account(state, BOB.address).balance == bob
    assert get_account(state, PROPOSER.address).balance == paid


def test_block_fees_are_paid_to_the_proposer_whatever_the_receipts() -> None:
    parent, state = _alice_with_nonce_4()
    txs = [_send(1, 1_000, 4), _send(0, 1_000, 5), _send(10**6, 2_500, 6)]
    built = RUNTIME.build_block(state, parent, 2_000, PROPOSER, txs)
    assert [r.code for r in built.receipts] == [0, errors.ZERO_AMOUNT.number, errors.INSUFFICIENT_BALANCE.number]
    assert get_account(state, PROPOSER.address).balance == 4_500
    assert get_account(state, ALICE.address) == Account(10_000 - 4_500 - 1, 7)
