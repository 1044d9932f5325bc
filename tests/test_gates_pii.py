"""PII gate: real PII is found (and redacted on request); dates, times, versions and other look-alikes pass."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.datanet.gates.checksums import (
    card_prefix_ok,
    iban_check_digits,
    iban_valid,
    luhn_check_digit,
    luhn_valid,
)
from ailedger.datanet.gates.pii import PiiGate, find_pii, redact
from ailedger.datanet.gates.verdict import PiiReason

P = PiiReason
POSITIVES = [
    ("mail me at jane.doe+tips@example.co.uk please", P.EMAIL),
    ("write to omar@mail.example.org.", P.EMAIL),
    ("call +1 415 555 2671 today", P.PHONE),
    ("call (415) 555-2671 now", P.PHONE),
    ("or 415-555-2671", P.PHONE),
    ("or 415.555.2671", P.PHONE),
    ("office +44 20 7946 0958", P.PHONE),
    ("office 020 7946 0958", P.PHONE),
    ("mobile 07700 900123", P.PHONE),
    ("Berlin +49 30 12345678", P.PHONE),
    ("Paris +33 1 23 45 67 89", P.PHONE),
    ("e164 +14155552671", P.PHONE),
    ("card 4111 1111 1111 1111 exp 12/27", P.CARD),
    ("card 4111-1111-1111-1111", P.CARD),
    ("card 4111111111111111.", P.CARD),
    ("amex 3782 822463 10005", P.CARD),
    ("mc 5500005555555559", P.CARD),
    ("IBAN DE89 3704 0044 0532 0130 00", P.IBAN),
    ("pay GB82WEST12345698765432 now", P.IBAN),
    ("key AKIAIOSFODNN7EXAMPLE", P.API_KEY),
    ("token ghp_" + "a1B2" * 9, P.API_KEY),
    ("key sk-proj-abcdEFGH1234ijklMNOP5678", P.API_KEY),
    ("slack xoxb-123456789012-abcdefABCDEF", P.API_KEY),
    ("maps AIzaSyA1b2C3d4E5A1b2C3d4E5A1b2C3d4E5xyz", P.API_KEY),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", P.API_KEY),
    ("api_key=Zx9Qw3Er7Ty1Ui5Op2As", P.API_KEY),
    ('"token": "f8Kd93jLmQ02xNvB7cT1"', P.API_KEY),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----", P.PRIVATE_KEY),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", P.PRIVATE_KEY),
    ("-----BEGIN PRIVATE KEY-----\nMC4CAQ\n-----END PRIVATE KEY-----", P.PRIVATE_KEY),
]
LOOKALIKES = [
    "first made on 2024-01-15, again on 15/01/2024 and 01/15/2024",
    "set a timer at 12:30:45 and check at 13:05",
    "app v1.2.3 on build 10.0.19041.1, or version 2.10.3-beta",
    "firmware 192.168.100.200 and 4.12.180.37",
    "order 4111111111111112 arrived",
    "order 1234-5678-9012-3456 shipped",
    "ticket 1234 5678 9012 3456 7890 1234",
    "order #123456789, room 12345, serves 4-6",
    "id 550e8400-e29b-41d4-a716-446655440000",
    "token=550e8400-e29b-41d4-a716-446655440000",
    "ISBN 978-3-16-148410-0",
    "pi is 3.14159265358979",
    "bake at 180 C for 25 minutes, ratio 1:2:3",
    "user@localhost is not an address",
    "call 555-1234 for a table",
    "GB82WEST12345698765433 fails its check digits",
    "password=password and the token: abcdefghijklmnopqrstuvwxyz",
    "2024.01.15 and 12.30.45",
]


@pytest.mark.parametrize(("text", "kind"), POSITIVES)
def test_finds_pii(text: str, kind: PiiReason) -> None:
    found = find_pii(text)
    assert [f.kind for f in found] == [kind], found


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalikes_pass(text: str) -> None:
    assert find_pii(text) == []


def test_overlap_prefers_the_more_severe_kind() -> None:
    text = "token=AKIAIOSFODNN7EXAMPLE"
    assert [f.kind for f in find_pii(text)] == [P.API_KEY]


def test_redact_replaces_spans_with_tags() -> None:
    text = "mail jane@example.com or call +1 415 555 2671, card 4111 1111 1111 1111."
    assert redact(text, find_pii(text)) == "mail [EMAIL] or call [PHONE], card [CARD]."


def test_gate_reject_names_kinds_not_values() -> None:
    gate = PiiGate("reject")
    res = gate.check({"title": "x", "text": "write jane@example.com", "meta": {"phone": "+1 415 555 2671"}})
    assert res is not None and res.redacted is None
    assert res.reason == P.EMAIL
    assert res.detail == "1 email, 1 phone"
    assert "jane" not in res.detail and "415" not in res.detail
    assert gate.check({"text": "nothing to see on 2024-01-15"}) is None


def test_gate_redact_returns_clean_record() -> None:
    gate = PiiGate("redact")
    rec = {"text": "key sk-proj-abcdEFGH1234ijklMNOP5678 here", "n": 3, "tags": ["jane@example.com"]}
    res = gate.check(rec)
    assert res is not None
    assert res.redacted == {"text": "key [SECRET] here", "n": 3, "tags": ["[EMAIL]"]}
    assert rec["text"].startswith("key sk-")  # the input is not modified


def test_gate_fields_limit_the_scan() -> None:
    assert PiiGate("reject", fields=["text"]).check({"text": "fine", "contact": "jane@example.com"}) is None


KNOWN_CARDS = ["4111111111111111", "5500005555555559", "378282246310005", "6011111111111117", "3530111333300000",
               "2221000000000009"]
KNOWN_IBANS = ["GB82WEST12345698765432", "DE89370400440532013000", "FR1420041010050500013M02606",
               "NL91ABNA0417164300", "BE68539007547034", "CH9300762011623852957"]


@pytest.mark.parametrize("number", KNOWN_CARDS)
def test_luhn_known_valid(number: str) -> None:
    assert luhn_valid(number) and card_prefix_ok(number)


@pytest.mark.parametrize("number", ["4111111111111112", "1234567812345678", "378282246310006", "", "7", "41x1"])
def test_luhn_known_invalid(number: str) -> None:
    assert not luhn_valid(number)


def test_card_prefixes() -> None:
    assert not card_prefix_ok("9780306406157")  # an ISBN-13 shape
    assert not card_prefix_ok("1111111111111117")
    assert not card_prefix_ok("2000000000000008")


@pytest.mark.parametrize("iban", KNOWN_IBANS)
def test_iban_known_valid(iban: str) -> None:
    assert iban_valid(iban)
    assert iban_valid(" ".join(iban[i:i + 4] for i in range(0, len(iban), 4)))


@pytest.mark.parametrize("iban", ["GB82WEST12345698765433", "DE89370400440532013001", "DE8937040044053201300",
                                  "XX00", "DE00370400440532013000", "GB82 WEST 1234 5698 7654 3é"])
def test_iban_known_invalid(iban: str) -> None:
    assert not iban_valid(iban)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text("0123456789", min_size=12, max_size=18), st.integers(0, 17), st.integers(1, 9))
def test_luhn_catches_every_single_digit_error(body: str, pos: int, delta: int) -> None:
    number = body + luhn_check_digit(body)
    assert luhn_valid(number)
    pos %= len(number)
    wrong = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1:]
    assert not luhn_valid(wrong)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=11, max_size=30), st.integers(0, 33),
       st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
def test_iban_mod97_catches_single_substitutions(bban: str, pos: int, ch: str) -> None:
    """ISO 7064 mod 97-10 catches every substitution of a digit by a digit or a letter by a letter."""
    country = "ZZ"  # not in the length table, so any length 15-34 is allowed
    iban = country + iban_check_digits(country, bban) + bban
    assert iban_valid(iban)
    pos = 4 + pos % len(bban)
    if iban[pos] != ch and iban[pos].isdigit() == ch.isdigit():
        assert not iban_valid(iban[:pos] + ch + iban[pos + 1:])
