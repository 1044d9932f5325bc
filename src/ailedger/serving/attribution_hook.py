"""The narrow door between serving and Proof of Attribution: what serving asks of an attributor.

Why a protocol: the attribution engine (`ailedger.attribution`, layer 9) sits above serving (layer 8),
so serving may not import it. Serving only needs two questions answered — does this adapter have an
attribution bundle, and what is the record of this answer — and treats the record as opaque JSON
with its canonical bytes, their SHA-256 and the per-record shares the receipt carries. The CLI
(`ailedger serve`) builds the real implementation and hands it in.

`check` is serving's own guard on what an implementation returns: a record whose digest is not the
hash of its bytes, or shares the ledger would refuse, must never reach a receipt batch (the ledger
refuses a whole `submit_receipts` over one bad split), so such an answer counts as a failed
attribution instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ailedger.billing.payloads import MAX_SHARES
from ailedger.billing.txs import shares_fault
from ailedger.core import errors
from ailedger.core.errors import LedgerError

RECORD_BYTES = 32


@dataclass(frozen=True)
class Attributed:
    """One answer's attribution record, as serving stores it and a receipt names it."""

    record: dict[str, Any]  # the JSON attribution record (opaque to serving)
    digest: bytes  # SHA-256 of its canonical bytes (goes into the receipt's `attribution`)
    body: bytes  # its canonical bytes (stored here, posted to the node as a blob)
    shares: tuple[tuple[bytes, int], ...]  # (record 32-byte hash, bp), ascending; empty when nothing earned


class AnswerAttribution(Protocol):
    """What serving needs from an attribution engine (ailedger.attribution.attributor.ServingAttribution)."""

    def covers(self, model: str, version: int, adapter_hash: str) -> bool: ...

    def attribute(self, model: str, version: int, adapter_hash: str, prompt_ids: Sequence[int],
                  answer_ids: Sequence[int]) -> Attributed: ...


def check(found: Attributed) -> Attributed:
    """`found` if a receipt may carry it, else `bad_attribution_scores` saying what is wrong."""

    def wrong(detail: str) -> LedgerError:
        return LedgerError(errors.BAD_ATTRIBUTION_SCORES, f"the attribution engine returned {detail}")

    if hashlib.sha256(found.body).digest() != found.digest:
        raise wrong("a digest that is not the SHA-256 of the record's bytes")
    if len(found.shares) > MAX_SHARES:
        raise wrong(f"{len(found.shares)} shares, more than a receipt carries ({MAX_SHARES})")
    if any(len(record) != RECORD_BYTES or bp < 0 for record, bp in found.shares):  # what the wire format holds
        raise wrong("shares that are not 32-byte record hashes with bp of 0 or more")
    fault = shares_fault(found.shares)  # the ledger's own rule (billing.txs)
    if fault is not None:
        raise wrong(f"shares the ledger would refuse: {fault}")
    return found
