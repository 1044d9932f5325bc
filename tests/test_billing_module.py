"""The billing module through the state machine: prepaid funds, withdrawals, keys, receipts, each error."""

from __future__ import annotations

from typing import Any

import pytest

from ailedger.billing import payloads as b
from ailedger.billing import service, views
from ailedger.billing.keys import api_key_hash, key_hash_of, new_api_key, parse_api_key
from ailedger.billing.rules import receipt_fee
from ailedger.core import errors
from ailedger.core.address import encode_address
from ailedger.core.encoding import MAX_AMOUNT
from ailedger.core.errors import LedgerError
from tests.billing_sim import (
    CALLER,
    CALLER2,
    LEGAL1,
    PROVIDER,
    PROVIDER2,
    UNIT,
    acct,
    api_key,
    authorize,
    kh,
    receipt,
    rid,
    stored,
    submit,
    world,
)
from tests.datanet_sim import FEE, Sim
from tests.models_sim import assert_fails_cleanly, assert_replay_matches, h, total_supply

K1, K2, K_OTHER = kh(1), kh(2), kh(3)


@pytest.fixture(scope="module")
def setup() -> Sim:
    """CALLER deposited 10 units and holds K1 (allowance 10 units) for PROVIDER, K2 (1,000 micro) for PROVIDER2."""
    sim = world()
    sim.ok((CALLER, b.DEPOSIT, b.Amount(10 * UNIT)))
    sim.ok((CALLER, b.AUTHORIZE_KEY, authorize(K1)), (CALLER, b.AUTHORIZE_KEY, authorize(K2, PROVIDER2, 1_000)))
    return sim


# -- prepaid funds -------------------------------------------------------------------------------------------

def test_deposit_moves_balance_into_prepaid() -> None:
    sim = world()
    before, supply = sim.balance(CALLER), total_supply(sim.state)
    sim.ok((CALLER, b.DEPOSIT, b.Amount(3 * UNIT)), (CALLER, b.DEPOSIT, b.Amount(1)))
    assert sim.balance(CALLER) == before - 3 * UNIT - 1 - 2 * FEE
    a = acct(sim, CALLER)
    assert (a.prepaid, a.withdrawing, a.release_height) == (3 * UNIT + 1, 0, 0)
    assert views.holdings(sim.state) == 3 * UNIT + 1 and total_supply(sim.state) == supply


def test_withdraw_waits_the_delay_and_a_later_withdraw_moves_the_release() -> None:
    sim = world()
    sim.ok((CALLER, b.DEPOSIT, b.Amount(10 * UNIT)))
    sim.ok((CALLER, b.WITHDRAW, b.Amount(3 * UNIT)))
    h0 = sim.height
    a = acct(sim, CALLER)
    assert (a.prepaid, a.withdrawing, a.release_height) == (7 * UNIT, 3 * UNIT, h0 + 5)
    balance = sim.balance(CALLER)
    sim.until(h0 + 2)
    sim.ok((CALLER, b.WITHDRAW, b.Amount(UNIT)))  # at h0 + 3: the whole bucket now waits until h0 + 8
    balance -= FEE
    assert acct(sim, CALLER).release_height == h0 + 8
    sim.until(h0 + 5)
    assert sim.balance(CALLER) == balance and acct(sim, CALLER).withdrawing == 4 * UNIT
    sim.until(h0 + 7)
    assert sim.balance(CALLER) == balance
    sim.until(h0 + 8)
    a = acct(sim, CALLER)
    assert sim.balance(CALLER) == balance + 4 * UNIT
    assert (a.prepaid, a.withdrawing, a.release_height) == (6 * UNIT, 0, 0)
    assert total_supply(sim.state) == total_supply(world().state)
    sim.until(h0 + 12)
    assert sim.balance(CALLER) == balance + 4 * UNIT
    assert_replay_matches(sim)


def test_two_withdraws_in_one_block_release_once() -> None:
    sim = world()
    sim.ok((CALLER, b.DEPOSIT, b.Amount(10 * UNIT)))
    sim.ok((CALLER, b.WITHDRAW, b.Amount(UNIT)), (CALLER, b.WITHDRAW, b.Amount(2 * UNIT)))
    balance = sim.balance(CALLER)
    sim.until(sim.height + 5)
    assert sim.balance(CALLER) == balance + 3 * UNIT and acct(sim, CALLER).withdrawing == 0


# -- keys ------------------------------------------------------------------------------------------------

def test_authorize_binds_a_key_to_the_account(setup: Sim) -> None:
    k = api_key(setup, K1)
    assert (k.account, k.provider, k.allowance, k.spent, k.expires, k.revoked) == (
        CALLER.address, PROVIDER.address, 10 * UNIT, 0, 0, 0)
    a = acct(setup, CALLER)
    assert (a.keys, a.live_keys) == (2, 2)
    assert [x.key_hash for x in views.account_keys(setup.state, CALLER.address)] == [K1, K2]
    doc = service.account_json(setup.state, setup.height, encode_address(CALLER.address))
    assert doc["prepaid"] == 10 * UNIT and doc["available"] == 10 * UNIT and doc["release_height"] is None
    assert [k["key_hash"] for k in doc["keys"]] == [K1.hex(), K2.hex()]
    kd = service.key_json(setup.state, setup.height, K2.hex())
    assert kd == {"key_hash": K2.hex(), "account": encode_address(CALLER.address),
                  "provider": encode_address(PROVIDER2.address), "allowance": 1_000, "spent": 0, "remaining": 1_000,
                  "expires": 0, "revoked": False, "revoked_height": None, "created_height": setup.height,
                  "live": True, "receipts": 0, "account_prepaid": 10 * UNIT, "account_withdrawing": 0,
                  "height": setup.height}


def test_revoke_stops_charging_and_frees_a_slot(setup: Sim) -> None:
    sim = setup.copy()
    sim.ok((CALLER, b.AUTHORIZE_KEY, authorize(kh(9))))
    assert_fails_cleanly(sim.copy(), CALLER, b.AUTHORIZE_KEY, authorize(kh(10)), "too_many_keys")
    sim.ok((CALLER, b.REVOKE_KEY, b.KeyRef(K1)))
    k = api_key(sim, K1)
    assert k.revoked and k.revoked_height == sim.height and acct(sim, CALLER).live_keys == 2
    sim.ok((PROVIDER, b.SUBMIT_RECEIPTS, submit(receipt(1, K1))))
    assert stored(sim, 1).status == 4 and stored(sim, 1).charged == 0  # revoked_key
    sim.ok((CALLER, b.AUTHORIZE_KEY, authorize(kh(10))))
    assert service.key_json(sim.state, sim.height, K1.hex())["live"] is False


def test_expiry_ends_charging_after_the_last_height_and_frees_the_slot(setup: Sim) -> None:
    sim = setup.copy()
    last = sim.height + 2
    sim.ok((CALLER, b.AUTHORIZE_KEY, authorize(kh(9), expires=last)))
    assert acct(sim, CALLER).live_keys == 3
    sim.until(last - 1)
    assert service.key_json(sim.state, sim.height, kh(9).hex())["live"] is True
    sim.ok((PROVIDER, b.SUBMIT_RECEIPTS, submit(receipt(1, kh(9)))))  # at `last`: still charged
    assert stored(sim, 1).status == 0 and stored(sim, 1).charged == 2_000
    assert acct(sim, CALLER).live_keys == 2  # its end_block took it out of the live count
    assert service.key_json(sim.state, sim.height, kh(9).hex())["live"] is False
    sim.ok((PROVIDER, b.SUBMIT_RECEIPTS, submit(receipt(2, kh(9)))))
    assert stored(sim, 2).status == 5 and stored(sim, 2).charged == 0  # expired_key
    sim.ok((CALLER, b.REVOKE_KEY, b.KeyRef(kh(9))))  # revoking an expired key changes no count
    assert acct(sim, CALLER).live_keys == 2
    assert_replay_matches(sim)


# -- receipts --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("tokens", "price", "fee"), [
    (0, 2_000, 0), (1, 2_000, 2), (1, 333, 1), (10, 333, 4), (3, 500, 2), (1_000, 333, 333), (1_001, 333, 334),
    (2**33, MAX_AMOUNT, MAX_AMOUNT), (7, 0, 0),
])
def test_fee_rounds_up(tokens: int, price: int, fee: int) -> None:
    assert receipt_fee(tokens, price) == fee


def test_receipts_charge_the_exact_fee_into_escrow(setup: Sim) -> None:
    sim = setup.copy()
    supply = total_supply(sim.state)
    sim.ok((PROVIDER, b.SUBMIT_RECEIPTS, submit(
        receipt(1, K1, (1_234, 567)),  # legal@1: 1,801 tokens at 2,000 -> 3,602
        receipt(2, K1, (7, 3), version=2, citations=[h(70), h(71)]),  # legal@2: 10 tokens at 333 -> ceil(3.33) = 4
        receipt(3, K1, (2, 1), model="smollm2", version=0),  # the base: 3 tokens at 500 -> ceil(1.5) = 2
        receipt(4, K1, (100, 0), model="old"),  # retired, still paid: 100 at 1,000 -> 100
    )))
    want = [(2_000, 3_602), (333, 4), (500, 2), (1_000, 100)]
    got = [(stored(sim, i).price, stored(sim, i).fee) for i in range(1, 5)]
    assert got == want and all(stored(sim, i).charged == stored(sim, i).fee for i in range(1, 5))
    assert {stored(sim, i).status for i in range(1, 5)} == {0}
    total = sum(f for _, f in want)
    # the block settled its receipts (docs/settlement.md): the adapter calls carry no attribution, so their
    # data parts (7,000 bp of each fee, largest remainder: 2,522 + 3 + 70) went back to the caller
    assert acct(sim, CALLER).prepaid == 10 * UNIT - total + 2_595 and api_key(sim, K1).spent == total
    assert views.escrowed(sim.state) == 0 and total_supply(sim.state) == supply
    r = stored(sim, 2).to_json()
    assert r["caller"] == encode_address(CALLER.address) and r["provider"] == encode_address(PROVIDER.address)
    assert r["citations"] == [h(70).hex(), h(71).hex()] and r["status"] == "charged" and r["settled"] is False
    assert r["seq"] == 1 and r["height"] == sim.height and len(r["tx_id"]) == 64 and r["version"] == 2
    assert (r["prompt_tokens"], r["completion_tokens"], r["model"]) == (7, 3, "legal")
    assert service.escrow_json(sim.state, sim.height) == {"height": sim.height, "escrowed": 0, "receipts": 4,
                                                           "unsettled": 0}
    page = service.receipts_json(sim.state, sim.height, K1.hex(), offset=1, limit=2)
    assert [x["id"] for x in page["receipts"]] == [rid(2).hex(), rid(3).hex()]
    assert (page["total"], page["next_offset"]) == (4, 3)
    every = service.receipts_json(sim.state, sim.height)
    assert [x["id"] for x in every["receipts"]] == [rid(i).hex() for i in range(1, 5)] and every["next_offset"] is None
    assert api_key(sim, K1).receipts == 4
    assert_replay_matches(sim)


def test_short_when_prepaid_then_withdrawing_run_out(setup: Sim) -> None:
    sim = setup.copy()
    sim.ok((CALLER, b.WITHDRAW, b.Amount(10 * UNIT - 1_000)))  # prepaid 1,000; withdrawing the rest
    # 5,000,000 tokens at 2,000 = 10,000,000: 1,000 from prepaid, then the whole withdrawing bucket... capped by
    # the allowance (10 units), so the fee is met exactly: charged, nothing left anywhere
    sim.ok((PROVIDER, b.SUBMIT_RECEIPTS, submit(receipt(1, K1, (3_000_000, 2_000_000)))))
    r = stored(sim, 1)
    assert (r.fee, r.charged, r.status) == (10 * UNIT, 10 * UNIT, 0)
    a = acct(sim, CALLER)
    assert (a.prepaid, a.withdrawing) == (7 * UNIT, 0)  # settled at once: the unattributed data part comes back
    sim.ok((CALLER2, b.DEPOSIT, b.Amount(UNIT)))
    sim.ok((PROVIDER2, b.SUBMIT_RECEIPTS, submit(receipt(2, K2))))
    # the refunded data part pays until K2's allowance (1,000) runs out: short
    assert (stored(sim, 2).fee, stored(sim, 2).charged, stored(sim, 2).status) == (2_000, 1_000, 1)
    balance = sim.balance(CALLER)
    sim.until(sim.height + 5)
    assert sim.balance(CALLER) == balance  # the bucket it emptied releases nothing
    assert total_supply(sim.state) == total_supply(setup.state)


def test_charges_withdrawing_after_prepaid(setup: Sim) -> None:
    sim = setup.copy()
    sim.ok((CALLER, b.WITHDRAW, b.Amount(10 * UNIT - 1_000)))
    sim.ok((PROVIDER, b.SUBMIT_RECEIPTS, submit(receipt(1, K1, (1_000, 500)))))  # 3,000: 1,000 + 2,000
    a = acct(sim, CALLER)
    assert (a.prepaid, a.withdrawing) == (2_100, 10 * UNIT - 3_000)  # the unattributed data part, refunded
    balance = sim.balance(CALLER)
    sim.until(a.release_height)
    assert sim.balance(CALLER) == balance + 10 * UNIT - 3_000


def test_short_when_the_allowance_runs_out(setup: Sim) -> None:
    sim = setup.copy()
    sim.ok((PROVIDER2, b.SUBMIT_RECEIPTS, submit(receipt(1, K2, (300, 0)), receipt(2, K2, (300, 0)))))
    assert [(stored(sim, i).fee, stored(sim, i).charged, stored(sim, i).status) for i in (1, 2)] == [
        (600, 600, 0), (600, 400, 1)]
    assert api_key(sim, K2).spent == 1_000 == api_key(sim, K2).allowance
    sim.ok((PROVIDER2, b.SUBMIT_RECEIPTS, submit(receipt(3, K2, (1, 0)))))
    assert (stored(sim, 3).charged, stored(sim, 3).status) == (0, 1)


def test_each_rejection_is_stored_with_nothing_charged(setup: Sim) -> None:
    sim = setup.copy()
    sim.ok((CALLER, b.AUTHORIZE_KEY, authorize(kh(8))))
    sim.ok((CALLER, b.REVOKE_KEY, b.KeyRef(kh(8))))
    cases = [
        ("unknown_key", receipt(1, kh(99))),
        ("wrong_provider", receipt(2, K2)),
        ("revoked_key", receipt(3, kh(8))),
        ("unknown_model", receipt(4, K1, model="nope")),
        ("unknown_model", receipt(5, K1, version=7)),
        ("unknown_model", receipt(6, K1, model="Bad Name!")),
        ("unknown_model", receipt(7, K1, model="legal", version=0)),  # an adapter name is no base
        ("hash_mismatch", receipt(8, K1, adapter_hash=h(11))),
        ("hash_mismatch", receipt(9, K1, base_hash=h(2))),
        ("hash_mismatch", receipt(10, K1, model="smollm2", version=0, adapter_hash=LEGAL1)),
        ("hash_mismatch", receipt(11, K1, model="smollm2", version=0, base_hash=h(3))),
    ]
    before = acct(sim, CALLER)
    for start in range(0, len(cases), 6):
        sim.ok((PROVIDER, b.SUBMIT_RECEIPTS, submit(*[r for _, r in cases[start:start + 6]])))
    for i, (status, _) in enumerate(cases, 1):
        r = stored(sim, i).to_json()
        assert (r["status"], r["charged"], r["fee"], r["price"]) == (status, 0, 0, 0), i
    assert stored(sim, 1).to_json()["caller"] is None and stored(sim, 2).caller == CALLER.address
    assert acct(sim, CALLER) == before and views.escrowed(sim.state) == 0
    assert api_key(sim, K1).receipts == 8 and api_key(sim, K2).receipts == 1
    assert service.escrow_json(sim.state, sim.height)["receipts"] == len(cases)


def test_duplicate_ids_refuse_the_whole_transaction(setup: Sim) -> None:
    sim = setup.copy()
    assert_fails_cleanly(sim.copy(), PROVIDER, b.SUBMIT_RECEIPTS, submit(receipt(1, K1), receipt(1, K1)),
                         "duplicate_receipt")
    sim.ok((PROVIDER, b.SUBMIT_RECEIPTS, submit(receipt(1, K1))))
    assert_fails_cleanly(sim.copy(), PROVIDER, b.SUBMIT_RECEIPTS, submit(receipt(2, K1), receipt(1, K1)),
                         "duplicate_receipt")
    assert_fails_cleanly(sim.copy(), PROVIDER2, b.SUBMIT_RECEIPTS, submit(receipt(1, K2)), "duplicate_receipt")


BAD: list[tuple[str, Any, int, Any]] = [
    ("zero_amount", CALLER, b.DEPOSIT, b.Amount(0)),
    ("insufficient_balance", CALLER2, b.DEPOSIT, b.Amount(100 * UNIT)),
    ("zero_amount", CALLER, b.WITHDRAW, b.Amount(0)),
    ("insufficient_prepaid", CALLER, b.WITHDRAW, b.Amount(10 * UNIT + 1)),
    ("insufficient_prepaid", CALLER2, b.WITHDRAW, b.Amount(1)),
    ("api_key_exists", CALLER2, b.AUTHORIZE_KEY, authorize(K1)),
    ("bad_billing_param", CALLER, b.AUTHORIZE_KEY, authorize(bytes(32))),
    ("bad_billing_param", CALLER, b.AUTHORIZE_KEY, b.AuthorizeKey(kh(5), bytes(20), 1, 0)),
    ("bad_billing_param", CALLER, b.AUTHORIZE_KEY, authorize(kh(5), allowance=0)),
    ("bad_billing_param", CALLER, b.AUTHORIZE_KEY, authorize(kh(5), expires=3)),
    ("api_key_not_found", CALLER, b.REVOKE_KEY, b.KeyRef(kh(5))),
    ("not_key_owner", CALLER2, b.REVOKE_KEY, b.KeyRef(K1)),
    ("not_key_owner", PROVIDER, b.REVOKE_KEY, b.KeyRef(K1)),
    ("bad_billing_param", PROVIDER, b.SUBMIT_RECEIPTS, submit()),
    ("bad_billing_param", PROVIDER, b.SUBMIT_RECEIPTS, submit(receipt(1, K1, id=bytes(32)))),
    ("too_many_receipts", PROVIDER, b.SUBMIT_RECEIPTS, submit(*[receipt(i, K1) for i in range(7)])),
    ("too_many_citations", PROVIDER, b.SUBMIT_RECEIPTS, submit(receipt(1, K1), receipt(2, K1, citations=[
        h(1), h(2), h(3)]))),
]


@pytest.mark.parametrize(("code", "sender", "tx_type", "payload"), BAD, ids=[f"{i}-{x[0]}" for i, x in enumerate(BAD)])
def test_each_error_leaves_state_as_it_was_but_the_fee(setup: Sim, code: str, sender: Any, tx_type: int,
                                                        payload: Any) -> None:
    assert_fails_cleanly(setup.copy(), sender, tx_type, payload, code)


def test_revoking_twice_is_refused(setup: Sim) -> None:
    sim = setup.copy()
    sim.ok((CALLER, b.REVOKE_KEY, b.KeyRef(K2)))
    assert_fails_cleanly(sim, CALLER, b.REVOKE_KEY, b.KeyRef(K2), "api_key_revoked")


def test_reads_refuse_unknown_and_malformed_ids(setup: Sim) -> None:
    s, height = setup.state, setup.height
    for fn, arg, code in [(service.key_json, kh(77).hex(), errors.API_KEY_NOT_FOUND),
                          (service.key_json, "xyz", errors.BAD_KEY_HASH),
                          (service.receipt_json, rid(77).hex(), errors.RECEIPT_NOT_FOUND),
                          (service.receipt_json, "12", errors.BAD_RECEIPT_ID),
                          (service.account_json, "al1nope", errors.BAD_ADDRESS)]:
        with pytest.raises(LedgerError) as exc:
            fn(s, height, arg)
        assert exc.value.code is code
    with pytest.raises(LedgerError) as exc:
        service.receipts_json(s, height, None, 0, 0)
    assert exc.value.code is errors.BAD_REQUEST
    fresh = service.account_json(s, height, encode_address(PROVIDER.address))
    assert (fresh["prepaid"], fresh["keys"], fresh["keys_total"]) == (0, [], 0)


def test_api_keys_parse_and_hash() -> None:
    key = new_api_key()
    assert key.startswith("alk_") and len(key) == 47 and new_api_key() != key
    assert parse_api_key(f"  {key}\n") == key
    assert api_key_hash(key) == api_key_hash(f" {key}") != api_key_hash(new_api_key())
    assert len(api_key_hash(key)) == 32 and key_hash_of(key) == api_key_hash(key)
    assert key_hash_of(api_key_hash(key).hex().upper()) == api_key_hash(key)
    last = "alk_" + "A" * 42 + "B"  # decodes, but not canonically (its low bits are not zero)
    for bad in ["", "alk_", "sk-" + "a" * 44, key[:-1], key + "A", key.replace("_", "+", 2), last]:
        with pytest.raises(LedgerError) as exc:
            parse_api_key(bad)
        assert exc.value.code is errors.BAD_API_KEY and key[4:] not in str(exc.value)
    with pytest.raises(LedgerError) as exc:
        key_hash_of("abc")
    assert exc.value.code is errors.BAD_KEY_HASH


def test_history_replays_to_the_same_roots(setup: Sim) -> None:
    sim = setup.copy()
    sim.ok((CALLER, b.WITHDRAW, b.Amount(UNIT)), (PROVIDER, b.SUBMIT_RECEIPTS, submit(receipt(1, K1))))
    sim.ok((PROVIDER2, b.SUBMIT_RECEIPTS, submit(receipt(2, K2, (1, 0)), receipt(3, kh(50)))))
    sim.ok((CALLER, b.REVOKE_KEY, b.KeyRef(K1)))
    sim.until(sim.height + 6)
    assert_replay_matches(sim)
    assert total_supply(sim.state) == total_supply(world().state)
