"""Records (canonical bytes, hash, text), the verdict vocabulary, the schema and exact-duplicate gates."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet.gates import GATES, REASONS, Gate, Verdict, describe
from ailedger.datanet.gates.exact import ExactDupGate
from ailedger.datanet.gates.records import canonical_record, record_hash, record_text
from ailedger.datanet.gates.schema import SchemaGate
from ailedger.datanet.gates.verdict import DuplicateReason, SchemaReason

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids,
                                                                                     max_size=4), max_leaves=12)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_canonical_bytes_ignore_key_order_and_spacing(obj: dict[str, object]) -> None:
    shuffled = dict(reversed(list(obj.items())))
    assert canonical_record(shuffled) == canonical_record(obj)
    assert canonical_record(json.loads(json.dumps(obj, indent=3))) == canonical_record(obj)
    assert record_hash(obj) == hashlib.sha256(canonical_record(obj)).digest()


def test_canonical_form_is_compact_utf8() -> None:
    assert canonical_record({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_record_text() -> None:
    rec = {"title": "T", "text": "body", "n": 3, "meta": {"z": "deep", "a": ["x", 1, "y"]}}
    assert record_text(rec) == "x\ny\ndeep\nbody\nT"  # sorted keys at every level, nested strings included
    assert record_text(rec, ["title", "text", "missing"]) == "T\nbody"
    assert record_text([1, "a"]) == "a" and record_text("s", ["x"]) == ""


def test_gate_and_reason_numbers_are_stable() -> None:
    """These numbers are on the ledger: renumbering breaks every stored verdict."""
    assert GATES == {1: "schema", 2: "exact_duplicate", 3: "near_duplicate", 4: "pii", 5: "quality", 6: "off_topic"}
    assert REASONS[1] == {1: "not_object", 2: "schema_mismatch", 3: "too_large"}
    assert REASONS[2] == REASONS[3] == {1: "within_batch", 2: "in_datanet"}
    assert REASONS[4] == {1: "email", 2: "phone", 3: "card", 4: "iban", 5: "api_key", 6: "private_key"}
    assert REASONS[5] == {1: "too_short", 2: "too_long", 3: "repetitive", 4: "symbols", 5: "invisible_chars",
                          6: "not_text"}
    assert all(0 < g < 256 and all(0 < r < 65536 for r in rs) for g, rs in REASONS.items())


def test_every_pair_has_a_sentence() -> None:
    for gate, reasons in REASONS.items():
        for reason in reasons:
            sentence = describe(gate, reason)
            assert sentence.endswith(".") and "rejected the record (" not in sentence
    assert describe(5, 1, "3 characters") == "The record's text is shorter than the Datanet's minimum: 3 characters."
    assert "gate_9" in describe(9, 1)
    v = Verdict(4, b"\x01" * 32, Gate.PII, 2, "1 phone")
    assert (v.gate_name, v.reason_name) == ("pii", "phone")
    assert v.to_json()["message"] == "The record contains a phone number: 1 phone."


def test_schema_gate() -> None:
    gate = SchemaGate({"type": "object", "required": ["text"], "properties": {"text": {"type": "string"},
                       "tags": {"type": "array", "items": {"type": "string"}}}}, max_record_bytes=64)
    assert gate.check({"text": "hi"}, 13) is None
    assert gate.check(["x"], 5) == (SchemaReason.NOT_OBJECT, "got a JSON list")
    assert gate.check({"text": "x"}, 65)[0] == SchemaReason.TOO_LARGE  # type: ignore[index]
    reason, detail = gate.check({"text": "x", "tags": ["a", 3]}, 20)  # type: ignore[misc]
    assert reason == SchemaReason.SCHEMA_MISMATCH and detail.startswith("$.tags[1]: 3 is not of type 'string'")
    assert SchemaGate(None).check({"anything": 1}, 10) is None


def test_bad_schema_is_a_clear_error() -> None:
    with pytest.raises(LedgerError) as err:
        SchemaGate({"type": "objekt"})
    assert err.value.code is errors.BAD_SCHEMA and "objekt" in err.value.detail
    with pytest.raises(LedgerError):
        SchemaGate(None, max_record_bytes=0)


def test_exact_duplicates() -> None:
    gate = ExactDupGate(known={b"k" * 32})
    assert gate.check(b"k" * 32) == DuplicateReason.IN_DATANET
    assert gate.check(b"a" * 32) is None
    assert gate.check(b"a" * 32) == DuplicateReason.WITHIN_BATCH
