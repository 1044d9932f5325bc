"""Receipts that carry an answer's attribution: the codec round trip and the ledger's refusal of bad splits.

The rule under test (docs/billing.md): `shares` is empty or sums to exactly 10,000 bp, no share is
above 10,000, records are unique and in strictly ascending byte order, shares need a non-zero
`attribution`, and a base-only receipt carries neither. Anything else refuses the whole transaction
with `bad_billing_param` and leaves the ledger as it was (but the fee).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.billing import payloads as b
from ailedger.billing.payloads import FULL_BP, ReceiptShare
from ailedger.billing.txs import check_attribution
from ailedger.cli.billing import read_receipts
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from tests.billing_sim import CALLER, PROVIDER, UNIT, authorize, kh, receipt, stored, submit, world
from tests.datanet_sim import Sim
from tests.models_sim import assert_fails_cleanly

K1 = kh(1)
DIGEST = hashlib.sha256(b'{"record":1}').digest()

record_ids = st.binary(min_size=32, max_size=32)


@st.composite
def valid_shares(draw: st.DrawFn) -> list[ReceiptShare]:
    """1..32 distinct records, ascending, whose bp sum to exactly 10,000 (zeros allowed)."""
    who = sorted(set(draw(st.lists(record_ids, min_size=1, max_size=b.MAX_SHARES))))
    cuts = sorted(draw(st.lists(st.integers(0, FULL_BP), min_size=len(who) - 1, max_size=len(who) - 1)))
    bps = [hi - lo for lo, hi in zip([0, *cuts], [*cuts, FULL_BP], strict=True)]
    return [ReceiptShare(a, bp) for a, bp in zip(who, bps, strict=True)]


any_shares = st.lists(st.builds(ReceiptShare, record_ids, st.integers(0, 2**16 - 1)), max_size=b.MAX_SHARES)


def ok_split(shares: list[ReceiptShare]) -> bool:
    """The rule, written independently of billing.txs."""
    if not shares:
        return True
    keys = [s.record for s in shares]
    return (all(s.bp <= FULL_BP for s in shares) and sum(s.bp for s in shares) == FULL_BP
            and keys == sorted(set(keys)))


@settings(max_examples=200, deadline=None)
@given(shares=st.one_of(valid_shares(), any_shares), digest=st.binary(min_size=32, max_size=32),
       version=st.integers(0, 3))
def test_receipt_codec_round_trips_and_the_rule_matches_its_statement(shares: list[ReceiptShare], digest: bytes,
                                                                      version: int) -> None:
    r = receipt(1, K1, version=version, attribution=digest, shares=shares)
    assert b.RECEIPT_CODEC.decode(b.RECEIPT_CODEC.encode(r)) == r
    whole = ok_split(shares) and (not shares or any(digest))
    expect_ok = whole and (version > 0 or (not shares and not any(digest)))
    try:
        check_attribution(0, r)
        accepted = True
    except LedgerError as exc:
        assert exc.code is errors.BAD_BILLING_PARAM
        accepted = False
    assert accepted == expect_ok


def test_an_old_style_receipt_defaults_to_no_attribution() -> None:
    r = b.Receipt(bytes([1]) * 32, K1, "legal", 1, bytes(32), bytes(32), 1, 2)
    assert r.attribution == bytes(32) and r.shares == []
    assert b.RECEIPT_CODEC.encode(r).endswith(bytes(32) + bytes(4))  # zero digest, empty list


@pytest.fixture(scope="module")
def setup() -> Sim:
    sim = world()
    sim.ok((CALLER, b.DEPOSIT, b.Amount(10 * UNIT)))
    sim.ok((CALLER, b.AUTHORIZE_KEY, authorize(K1)))
    return sim


A, B, C = bytes([3]) * 32, bytes([7]) * 32, bytes([9]) * 32  # record hashes


def test_stored_receipt_keeps_digest_and_shares_and_shows_them(setup: Sim) -> None:
    sim = setup.copy()
    shares = [ReceiptShare(A, 2_500), ReceiptShare(B, 7_500)]
    sim.ok((PROVIDER, b.SUBMIT_RECEIPTS, submit(receipt(1, K1, attribution=DIGEST, shares=shares),
                                                receipt(2, K1))))
    one, two = stored(sim, 1), stored(sim, 2)
    assert one.attribution == DIGEST and one.shares == shares and one.status == 0
    assert two.attribution == bytes(32) and two.shares == []
    doc = one.to_json()
    assert doc["attribution"] == DIGEST.hex()
    assert doc["shares"] == [{"record": A.hex(), "bp": 2_500}, {"record": B.hex(), "bp": 7_500}]


BAD = [
    ("sum below", dict(attribution=DIGEST, shares=[ReceiptShare(A, 5_000), ReceiptShare(B, 4_999)])),
    ("sum above", dict(attribution=DIGEST, shares=[ReceiptShare(A, 5_000), ReceiptShare(B, 5_001)])),
    ("one above", dict(attribution=DIGEST, shares=[ReceiptShare(A, 10_001)])),
    ("descending", dict(attribution=DIGEST, shares=[ReceiptShare(B, 5_000), ReceiptShare(A, 5_000)])),
    ("repeated", dict(attribution=DIGEST, shares=[ReceiptShare(A, 5_000), ReceiptShare(A, 5_000)])),
    ("no digest", dict(shares=[ReceiptShare(A, 10_000)])),
    ("base with digest", dict(version=0, model="smollm2", attribution=DIGEST)),
    ("base with shares", dict(version=0, model="smollm2", attribution=DIGEST, shares=[ReceiptShare(C, 10_000)])),
]


@pytest.mark.parametrize(("why", "kw"), BAD, ids=[x[0] for x in BAD])
def test_a_bad_split_refuses_the_whole_transaction(setup: Sim, why: str, kw: dict[str, object]) -> None:
    bad = receipt(2, K1, **kw)  # type: ignore[arg-type]
    assert_fails_cleanly(setup.copy(), PROVIDER, b.SUBMIT_RECEIPTS, submit(receipt(1, K1), bad), "bad_billing_param")


def test_receipts_file_reads_attribution_and_shares(tmp_path: Path) -> None:
    r = receipt(1, K1, attribution=DIGEST, shares=[ReceiptShare(A, 10_000)])
    entry = {"id": r.id.hex(), "key_hash": K1.hex(), "model": "legal", "version": 1, "base_hash": r.base_hash.hex(),
             "adapter_hash": r.adapter_hash.hex(), "prompt_tokens": 600, "completion_tokens": 400,
             "citations": [], "attribution": DIGEST.hex(),
             "shares": [{"record": A.hex(), "bp": 10_000}]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps([entry]))
    assert read_receipts(path) == [r]
    del entry["attribution"], entry["shares"]
    path.write_text(json.dumps([entry]))
    assert read_receipts(path)[0].shares == [] and read_receipts(path)[0].attribution == bytes(32)
    for bad in ([{"record": "nope", "bp": 1}], [{"record": "ab" * 20, "bp": 1}], [{"record": A.hex(), "bp": 10_001}],
                "x"):
        path.write_text(json.dumps([{**entry, "shares": bad}]))
        with pytest.raises(LedgerError) as exc:
            read_receipts(path)
        assert exc.value.code is errors.BAD_RECEIPT_FILE
