"""The vocabulary of gate verdicts: stable numbers for the ledger, names and sentences for people.

Why numbers: a verdict is posted on the ledger as (gate u8, reason u16), so every gate and every
reason has a fixed small integer that must never be renumbered; new reasons are appended. The CLI,
the API and the explorer turn the pair back into a name and a sentence with `describe`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Gate(IntEnum):
    SCHEMA = 1
    EXACT_DUPLICATE = 2
    NEAR_DUPLICATE = 3
    PII = 4
    QUALITY = 5
    OFF_TOPIC = 6


class SchemaReason(IntEnum):
    NOT_OBJECT = 1
    SCHEMA_MISMATCH = 2
    TOO_LARGE = 3


class DuplicateReason(IntEnum):
    """Shared by the exact and the near-duplicate gate: where the earlier copy lives."""

    WITHIN_BATCH = 1
    IN_DATANET = 2


class PiiReason(IntEnum):
    EMAIL = 1
    PHONE = 2
    CARD = 3
    IBAN = 4
    API_KEY = 5
    PRIVATE_KEY = 6


class QualityReason(IntEnum):
    TOO_SHORT = 1
    TOO_LONG = 2
    REPETITIVE = 3
    SYMBOLS = 4
    INVISIBLE_CHARS = 5
    NOT_TEXT = 6


class OffTopicReason(IntEnum):
    FAR_FROM_TOPIC = 1


GATES: dict[int, str] = {g.value: g.name.lower() for g in Gate}
REASONS: dict[int, dict[int, str]] = {
    Gate.SCHEMA: {r.value: r.name.lower() for r in SchemaReason},
    Gate.EXACT_DUPLICATE: {r.value: r.name.lower() for r in DuplicateReason},
    Gate.NEAR_DUPLICATE: {r.value: r.name.lower() for r in DuplicateReason},
    Gate.PII: {r.value: r.name.lower() for r in PiiReason},
    Gate.QUALITY: {r.value: r.name.lower() for r in QualityReason},
    Gate.OFF_TOPIC: {r.value: r.name.lower() for r in OffTopicReason},
}

_SENTENCES: dict[tuple[int, int], str] = {
    (Gate.SCHEMA, SchemaReason.NOT_OBJECT): "The record is not a JSON object.",
    (Gate.SCHEMA, SchemaReason.SCHEMA_MISMATCH): "The record does not match the Datanet's schema.",
    (Gate.SCHEMA, SchemaReason.TOO_LARGE): "The record is larger than the Datanet allows.",
    (Gate.EXACT_DUPLICATE, DuplicateReason.WITHIN_BATCH): "The record repeats an earlier record of the same batch.",
    (Gate.EXACT_DUPLICATE, DuplicateReason.IN_DATANET): "The record is already in the Datanet.",
    (Gate.NEAR_DUPLICATE, DuplicateReason.WITHIN_BATCH):
        "The record is a near-copy of an earlier record of the same batch.",
    (Gate.NEAR_DUPLICATE, DuplicateReason.IN_DATANET): "The record is a near-copy of a record already in the Datanet.",
    (Gate.PII, PiiReason.EMAIL): "The record contains an e-mail address.",
    (Gate.PII, PiiReason.PHONE): "The record contains a phone number.",
    (Gate.PII, PiiReason.CARD): "The record contains a payment card number.",
    (Gate.PII, PiiReason.IBAN): "The record contains a bank account number (IBAN).",
    (Gate.PII, PiiReason.API_KEY): "The record contains an API key or access token.",
    (Gate.PII, PiiReason.PRIVATE_KEY): "The record contains a private key.",
    (Gate.QUALITY, QualityReason.TOO_SHORT): "The record's text is shorter than the Datanet's minimum.",
    (Gate.QUALITY, QualityReason.TOO_LONG): "The record's text is longer than the Datanet's maximum.",
    (Gate.QUALITY, QualityReason.REPETITIVE): "The record's text repeats itself too much.",
    (Gate.QUALITY, QualityReason.SYMBOLS): "The record's text is mostly symbols rather than words.",
    (Gate.QUALITY, QualityReason.INVISIBLE_CHARS):
        "The record's text hides invisible characters (zero-width, control or bidi-override).",
    (Gate.QUALITY, QualityReason.NOT_TEXT): "The record's text looks like binary or encoded data, not prose.",
    (Gate.OFF_TOPIC, OffTopicReason.FAR_FROM_TOPIC): "The record is far from the Datanet's topic.",
}


def gate_name(gate: int) -> str:
    return GATES.get(gate, f"gate_{gate}")


def reason_name(gate: int, reason: int) -> str:
    return REASONS.get(gate, {}).get(reason, f"reason_{reason}")


def describe(gate: int, reason: int, detail: str = "") -> str:
    """A human sentence for a (gate, reason) pair, with this occurrence's detail appended."""
    fallback = f"Gate {gate_name(gate)} rejected the record ({reason_name(gate, reason)})."
    sentence = _SENTENCES.get((gate, reason), fallback)
    return f"{sentence[:-1]}: {detail}." if detail else sentence


@dataclass(frozen=True)
class Verdict:
    """One gate's finding on one record. `passed` is true for findings that do not reject (a redaction)."""

    index: int
    record_hash: bytes
    gate: int
    reason: int
    detail: str = ""
    passed: bool = False

    @property
    def gate_name(self) -> str:
        return gate_name(self.gate)

    @property
    def reason_name(self) -> str:
        return reason_name(self.gate, self.reason)

    def sentence(self) -> str:
        return describe(self.gate, self.reason, self.detail)

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "record_hash": self.record_hash.hex(), "gate": self.gate,
                "gate_name": self.gate_name, "reason": self.reason, "reason_name": self.reason_name,
                "detail": self.detail, "passed": self.passed, "message": self.sentence()}
