"""The records of the simulated Datanet, what each truly is, and where each stands on the ledger.

Why a book beside the ledger: the ledger holds hashes only, and the actors need the bytes (the
gatekeeper runs the gates over them, the attribution stand-in reads their words) and the ground
truth (honest validators judge by it, the report counts by it). The book plays the node's blob
store: a record's hash is the SHA-256 of its canonical JSON, exactly as `datanet contribute` hashes
it, and the bytes never change after they are written.

Every kind of record is made by the synthetic Datanet's writer (`datanet.synth.writer`), the same
words the gates are tested on: honest cooking notes, junk, notes leaking PII, near-copies of
accepted notes, and keyword stuffing (a one-line note followed by the most-asked cooking words,
well formed and distinct, so it passes every automatic gate and must be caught by validators).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ailedger.core.hashing import sha256
from ailedger.datanet.gates.records import canonical_record, record_text
from ailedger.datanet.state import Status
from ailedger.datanet.synth.writer import JUNK, PII, Writer, edit, insert_sentence

# Junk the quality gate reads: "not_text" is one base64 blob, which the quality gate also refuses.
JUNK_KINDS = tuple(k for k in JUNK if k != "invisible")
STUFFING = ("garlic", "onion", "salt", "butter", "olive", "oil", "lemon", "pan", "oven", "roast", "braise", "sear",
            "simmer", "crispy", "easy", "quick", "best", "healthy", "chicken", "pasta", "rice", "soup", "curry",
            "sauce", "stock", "herbs", "spices", "recipe", "dinner", "tips")


@dataclass
class Entry:
    record: dict[str, Any]
    label: str  # "honest", "junk", "pii", "near_dup", "stuffing"
    owner: str  # the actor that wrote it
    status: int = Status.PENDING
    height: int = 0  # block of its contribute

    @property
    def text(self) -> str:
        return record_text(self.record)


class RecordBook:
    """Hash -> entry, in contribution order."""

    def __init__(self) -> None:
        self.entries: dict[bytes, Entry] = {}
        self.accepted: list[bytes] = []  # honest records the Datanet accepted, in order (what copiers copy)

    def add(self, record: dict[str, Any], label: str, owner: str, height: int) -> bytes | None:
        """Store a new record; None when its bytes are already in the book (the ledger would refuse it)."""
        h = sha256(canonical_record(record))
        if h in self.entries:
            return None
        self.entries[h] = Entry(record, label, owner, Status.PENDING, height)
        return h

    def __getitem__(self, h: bytes) -> Entry:
        return self.entries[h]

    def forget(self, hashes: list[bytes]) -> None:
        """Drop records whose contribute failed: they never reached the ledger."""
        for h in hashes:
            self.entries.pop(h, None)

    def settle(self, h: bytes, status: int) -> Entry:
        """The ledger decided `h`: record its status."""
        entry = self.entries[h]
        entry.status = status
        if status == Status.ACCEPTED and entry.label == "honest":
            self.accepted.append(h)
        return entry


class Scribe:
    """Makes each kind of record from one seeded RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.w = Writer(rng)

    def honest(self) -> dict[str, Any]:
        return self.w.cooking()

    def junk(self) -> dict[str, Any]:
        return self.w.junk(self.w.pick(JUNK_KINDS))

    def pii(self) -> dict[str, Any]:
        return insert_sentence(self.w.cooking(), self.w.pii(self.w.pick(PII)), self.rng)

    def near_copy(self, source: dict[str, Any]) -> dict[str, Any]:
        text = source["text"]
        for _ in range(1 + int(self.rng.random() * 2)):
            text = edit(text, self.w)
        return {"title": source["title"], "text": text}

    def stuffing(self) -> dict[str, Any]:
        words = self.rng.sample(STUFFING, 18)
        first = self.w.cooking()["text"].split(". ")[0].rstrip(".")
        return {"title": "The best cooking tips", "text": f"{first}. Keywords: {', '.join(words)}."}
