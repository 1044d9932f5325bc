"""The wire format of the billing transactions: type ids, payload records and their canonical codecs.

A serving provider builds `Receipt`s and sends them in `SubmitReceipts` batches; everything else is
sent by the paying account itself. Field order is the encoding order (docs/billing.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ailedger.core.encoding import AMOUNT, B20, B32, U16, U32, U64, ListOf, Record, Text

DEPOSIT, WITHDRAW, AUTHORIZE_KEY, REVOKE_KEY, SUBMIT_RECEIPTS = range(0x0501, 0x0506)

MAX_MODEL = 64  # an adapter name or a base model's name (models.state.MAX_NAME)
MAX_CITATIONS_WIRE = 64  # the codec's bound; the `billing_max_citations` parameter is the one enforced
MAX_RECEIPTS_WIRE = 1024  # the codec's bound; `billing_max_receipts_per_tx` is the one enforced
MAX_SHARES = 32  # contributors one receipt may pay (the codec's bound, enforced as is)
FULL_BP = 10_000  # a receipt's shares, when it has any, sum to exactly this many basis points
NO_ATTRIBUTION = bytes(32)  # a receipt's `attribution` when the answer has no attribution record


@dataclass(frozen=True)
class Amount:
    amount: int


@dataclass(frozen=True)
class AuthorizeKey:
    key_hash: bytes  # billing.keys.api_key_hash of the API key; the key itself never reaches the ledger
    provider: bytes  # 20-byte address of the one server that may charge the key
    allowance: int  # most the key may ever be charged, in micro-units
    expires: int  # last block height at which the key is charged; 0 = never expires


@dataclass(frozen=True)
class KeyRef:
    key_hash: bytes


@dataclass(frozen=True)
class ReceiptShare:
    """One training record's part of the data pool's cut of a receipt's fee, in basis points of that cut.

    Why records and not contributors: the ledger knows each record's contributor and status, so
    settlement pays whoever contributed the record and can stop paying a record rejected or retracted
    later; a provider cannot redirect a record's earnings to another address.
    """

    record: bytes  # 32-byte record hash, of the adapter's snapshot
    bp: int


@dataclass(frozen=True)
class Receipt:
    """One served call, as the provider saw it."""

    id: bytes  # chosen by the provider; unique ledger-wide
    key_hash: bytes
    model: str  # the adapter's name, or the base model's name for a base-only call
    version: int  # the adapter version (>= 1), or 0 for a base-only call
    base_hash: bytes  # weights hash of the base that answered
    adapter_hash: bytes  # the adapter's hash; 32 zero bytes for a base-only call
    prompt_tokens: int
    completion_tokens: int
    citations: list[bytes] = field(default_factory=list)  # record hashes retrieval cited
    # SHA-256 of the answer's canonical attribution record (a blob on the node); zeros: no record
    attribution: bytes = NO_ATTRIBUTION
    # the records settlement pays the data pool to, by hash ascending; empty, or summing to FULL_BP
    shares: list[ReceiptShare] = field(default_factory=list)


@dataclass(frozen=True)
class SubmitReceipts:
    receipts: list[Receipt]


AMOUNT_CODEC = Record(Amount, {"amount": AMOUNT})
AUTHORIZE_KEY_CODEC = Record(AuthorizeKey, {"key_hash": B32, "provider": B20, "allowance": AMOUNT, "expires": U64})
KEY_REF_CODEC = Record(KeyRef, {"key_hash": B32})
SHARE_CODEC = Record(ReceiptShare, {"record": B32, "bp": U16})
SHARES_CODEC = ListOf(SHARE_CODEC, MAX_SHARES)
RECEIPT_CODEC = Record(Receipt, {
    "id": B32, "key_hash": B32, "model": Text(MAX_MODEL), "version": U32, "base_hash": B32, "adapter_hash": B32,
    "prompt_tokens": U32, "completion_tokens": U32, "citations": ListOf(B32, MAX_CITATIONS_WIRE),
    "attribution": B32, "shares": SHARES_CODEC,
})
SUBMIT_RECEIPTS_CODEC = Record(SubmitReceipts, {"receipts": ListOf(RECEIPT_CODEC, MAX_RECEIPTS_WIRE)})
