"""The exact-duplicate gate: the same canonical bytes as a record the Datanet or this batch holds.

Why canonical bytes: two files that differ only in key order or spacing carry the same record, so
duplicates are found by the SHA-256 of the canonical JSON. Every record of the batch counts as seen,
failed or not: a copy of a rejected record is still a copy.
"""

from __future__ import annotations

from collections.abc import Container

from ailedger.datanet.gates.verdict import DuplicateReason


class ExactDupGate:
    def __init__(self, known: Container[bytes] = frozenset()) -> None:
        self.known = known
        self._seen: set[bytes] = set()

    def check(self, record_hash: bytes) -> DuplicateReason | None:
        if record_hash in self.known:
            return DuplicateReason.IN_DATANET
        if record_hash in self._seen:
            return DuplicateReason.WITHIN_BATCH
        self._seen.add(record_hash)
        return None
