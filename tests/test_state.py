"""State: journaled rollback, commit/undo, leaf layout independent of write order, reload from rows."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.chain.receipt import RECEIPT, Receipt, encode_receipt
from ailedger.chain.state import Overlay, State, leaf_data
from ailedger.core.merkle import verify_proof

keys = st.binary(min_size=1, max_size=6)
values = st.binary(min_size=0, max_size=8)
writes = st.lists(st.tuples(keys, values), max_size=30)


@settings(max_examples=200, deadline=None)
@given(writes, writes)
def test_revert_restores_exactly(first: list[tuple[bytes, bytes]], second: list[tuple[bytes, bytes]]) -> None:
    s = State()
    for k, v in first:
        s.set(k, v)
    before = {k: s.get(k) for k, _ in first + second}
    mark = s.checkpoint()
    for k, v in second:
        s.set(k, v)
    s.revert(mark)
    assert {k: s.get(k) for k, _ in first + second} == before


@settings(max_examples=100, deadline=None)
@given(writes)
def test_root_does_not_depend_on_write_order(ws: list[tuple[bytes, bytes]]) -> None:
    final = dict(ws)
    a, b = State(), State()
    for k, v in ws:
        a.set(k, v)
    for k, v in sorted(final.items(), reverse=True):
        b.set(k, v)
    assert a.commit()[0] == b.commit()[0]


@settings(max_examples=100, deadline=None)
@given(writes, writes)
def test_undo_commit_and_reload(first: list[tuple[bytes, bytes]], second: list[tuple[bytes, bytes]]) -> None:
    s = State()
    for k, v in first:
        s.set(k, v)
    root1, _ = s.commit()
    rows = sorted(s.rows(), key=lambda r: r[1])
    for k, v in second:
        s.set(k, v)
    s.commit()
    s.undo_commit()
    assert s.root() == root1
    assert sorted(s.rows(), key=lambda r: r[1]) == rows
    assert State(rows).root() == root1
    for k, v in s.items():
        proof = s.proof(k)
        assert proof is not None and verify_proof(root1, leaf_data(k, v), proof[1])


def test_overlay_reads_through_and_never_writes_base() -> None:
    base = State()
    base.set(b"a", b"1")
    base.commit()
    o = Overlay(base)
    o.set(b"a", b"2")
    o.delete(b"b")
    assert o.get(b"a") == b"2" and base.get(b"a") == b"1" and o.get(b"b") is None


@given(st.binary(min_size=32, max_size=32), st.integers(0, 2**16 - 1), st.integers(0, 2**63 - 1))
def test_fast_receipt_encoding_matches_codec(tx_id: bytes, code: int, fee: int) -> None:
    r = Receipt(tx_id, code, fee)
    assert encode_receipt(r) == RECEIPT.encode(r)
    assert RECEIPT.decode(encode_receipt(r)) == r
