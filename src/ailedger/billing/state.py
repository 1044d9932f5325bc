"""Billing state: prepaid accounts, API keys, stored receipts, their codecs and the keys they live under.

Layout (every key under `bil/`):
  bil/acct/<b20 address>          -> BillingAccount: prepaid, withdrawing, release height, key counts
  bil/na, bil/aidx/<u64 i>        -> number of billing accounts; the i-th address (first-use order)
  bil/ak/<b20 address>/<u32 n>    -> the account's n-th API key hash (authorization order)
  bil/key/<b32 key_hash>          -> ApiKey (a key hash is authorized once, ledger-wide, forever)
  bil/rel/<u64 height>            -> addresses (20 bytes each) whose withdrawing bucket is released
                                     to the balance at the end of that block (if still due then)
  bil/exp/<u64 height>            -> key hashes (32 bytes each) that stop being live after that block
  bil/rc/<b32 receipt id>         -> StoredReceipt (the provider's receipt + who, price, fee, charged, status)
  bil/kr/<b32 key_hash>/<u64 n>   -> the n-th receipt id charged (or refused) against that key
  bil/nr                          -> number of receipts ever stored (the next sequence number)
  bil/unsettled/<u64 seq>         -> the receipt id with sequence number seq, in ledger order
  bil/uhead                       -> first sequence number not yet settled (settlement walks from it)
  bil/escrow                      -> micro-units charged by receipts and not yet settled
  bil/srn/<u64 height>            -> u32 number of settlement row blocks stored at that height
  bil/sr/<u64 height>/<u32 n>     -> the n-th row block: the settlement columns of one submit_receipts
                                     transaction's charged receipts (layout at `pack_settlement_rows`);
                                     settlement reads them at the end of that block and deletes them

Why two release queues by height: like accounts' unbonding, a withdrawal and a key's expiry must
take effect by themselves at a known block, so end_block finds exactly what is due in one read.
A queue entry is only acted on if it is still due (a later withdraw moves the release height;
a revoked key is no longer live), so stale entries are harmless.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ailedger.billing.payloads import MAX_CITATIONS_WIRE, MAX_MODEL, SHARES_CODEC, ReceiptShare
from ailedger.chain.params import Reader
from ailedger.chain.state import Journal
from ailedger.core.address import encode_address
from ailedger.core.encoding import AMOUNT, B20, B32, U8, U32, U64, ListOf, Record, Text

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
ZERO_ADDRESS = bytes(20)
ZERO_HASH = bytes(32)


class ReceiptStatus:
    CHARGED = 0  # the fee was charged in full
    SHORT = 1  # charged less than the fee: the caller's funds or the key's allowance ran out
    UNKNOWN_KEY = 2  # rejections below: stored with charged 0
    WRONG_PROVIDER = 3
    REVOKED_KEY = 4
    EXPIRED_KEY = 5
    UNKNOWN_MODEL = 6
    HASH_MISMATCH = 7


STATUS_NAMES = {0: "charged", 1: "short", 2: "unknown_key", 3: "wrong_provider", 4: "revoked_key",
                5: "expired_key", 6: "unknown_model", 7: "hash_mismatch"}


@dataclass
class BillingAccount:
    prepaid: int = 0
    withdrawing: int = 0
    release_height: int = 0  # when `withdrawing` returns to the balance; 0 when nothing is withdrawing
    keys: int = 0  # API keys ever authorized (the length of bil/ak/<address>/)
    live_keys: int = 0  # of which neither revoked nor past their expiry height

    @property
    def available(self) -> int:
        """What receipts may still charge: prepaid first, then the withdrawing bucket."""
        return self.prepaid + self.withdrawing


ACCOUNT = Record(BillingAccount, {"prepaid": AMOUNT, "withdrawing": AMOUNT, "release_height": U64, "keys": U32,
                                  "live_keys": U32})


@dataclass
class ApiKey:
    key_hash: bytes
    account: bytes  # who pays
    provider: bytes  # the one address whose submit_receipts may charge it
    allowance: int
    spent: int
    expires: int  # last height at which receipts are charged; 0 = never
    created_height: int
    revoked: int = 0  # 0 live, 1 revoked
    revoked_height: int = 0
    receipts: int = 0  # receipts stored against this key (the length of bil/kr/<key_hash>/)

    def expired_at(self, height: int) -> bool:
        """True when a receipt at `height` comes after the key's last height."""
        return self.expires != 0 and height > self.expires


API_KEY = Record(ApiKey, {"key_hash": B32, "account": B20, "provider": B20, "allowance": AMOUNT, "spent": AMOUNT,
                          "expires": U64, "created_height": U64, "revoked": U8, "revoked_height": U64,
                          "receipts": U64})


@dataclass
class StoredReceipt:
    """A receipt as the ledger keeps it: what the provider sent, then what the ledger made of it."""

    id: bytes
    key_hash: bytes
    model: str
    version: int
    base_hash: bytes
    adapter_hash: bytes
    prompt_tokens: int
    completion_tokens: int
    citations: list[bytes]
    attribution: bytes  # SHA-256 of the answer's attribution record; zeros: none
    shares: list[ReceiptShare]  # the data pool's split, by contributor address ascending; empty: none
    caller: bytes  # the key's account; 20 zero bytes when the key is unknown
    provider: bytes  # the sender of the submit_receipts transaction
    price: int  # per 1,000 tokens, as in force when the receipt was stored; 0 when rejected
    fee: int  # ceil(tokens * price / 1000); 0 when rejected
    charged: int  # what moved into escrow: <= fee
    status: int
    height: int
    tx_id: bytes
    seq: int  # position in ledger order (bil/unsettled/<seq>)
    settled: int = 0  # 1 once settlement has paid `charged` out

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id.hex(), "key_hash": self.key_hash.hex(), "model": self.model, "version": self.version,
                "base_hash": self.base_hash.hex(), "adapter_hash": self.adapter_hash.hex(),
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "citations": [c.hex() for c in self.citations], "attribution": self.attribution.hex(),
                "shares": [{"record": x.record.hex(), "bp": x.bp} for x in self.shares],
                "caller": encode_address(self.caller) if self.caller != ZERO_ADDRESS else None,
                "provider": encode_address(self.provider), "price": self.price, "fee": self.fee,
                "charged": self.charged, "status": STATUS_NAMES[self.status], "height": self.height,
                "tx_id": self.tx_id.hex(), "seq": self.seq, "settled": bool(self.settled)}


RECEIPT = Record(StoredReceipt, {
    "id": B32, "key_hash": B32, "model": Text(MAX_MODEL), "version": U32, "base_hash": B32, "adapter_hash": B32,
    "prompt_tokens": U32, "completion_tokens": U32, "citations": ListOf(B32, MAX_CITATIONS_WIRE),
    "attribution": B32, "shares": SHARES_CODEC, "caller": B20,
    "provider": B20, "price": AMOUNT, "fee": AMOUNT, "charged": AMOUNT, "status": U8, "height": U64, "tx_id": B32,
    "seq": U64, "settled": U8,
})

# -- keys -----------------------------------------------------------------------------------------

ACCOUNT_COUNT_KEY = b"bil/na"
RECEIPT_COUNT_KEY = b"bil/nr"
UNSETTLED_HEAD_KEY = b"bil/uhead"
ESCROW_KEY = b"bil/escrow"


def account_key(address: bytes) -> bytes:
    return b"bil/acct/" + address


def account_index_key(i: int) -> bytes:
    return b"bil/aidx/" + _U64.pack(i)


def account_key_index_key(address: bytes, n: int) -> bytes:
    return b"bil/ak/" + address + b"/" + _U32.pack(n)


def api_key_key(key_hash: bytes) -> bytes:
    return b"bil/key/" + key_hash


def release_key(height: int) -> bytes:
    return b"bil/rel/" + _U64.pack(height)


def expiry_key(height: int) -> bytes:
    return b"bil/exp/" + _U64.pack(height)


def receipt_key(receipt_id: bytes) -> bytes:
    return b"bil/rc/" + receipt_id


def key_receipt_key(key_hash: bytes, n: int) -> bytes:
    return b"bil/kr/" + key_hash + b"/" + _U64.pack(n)


def unsettled_key(seq: int) -> bytes:
    return b"bil/unsettled/" + _U64.pack(seq)


def settlement_rows_count_key(height: int) -> bytes:
    return b"bil/srn/" + _U64.pack(height)


def settlement_rows_key(height: int, n: int) -> bytes:
    return b"bil/sr/" + _U64.pack(height) + b"/" + _U32.pack(n)


# -- settlement row blocks ------------------------------------------------------------------------
# Why: settlement must settle a block of many receipts without one state read per receipt. Each
# submit_receipts transaction therefore also writes the few columns settlement needs, packed as one
# value, so end_block reads a block's receipts in one read per transaction and decodes them with NumPy.
# Layout (little-endian, so NumPy reads the columns in place):
#   header  '<IIIHH'  n_rows, n_shares, n_records, n_callers, n_models
#   provider          20 bytes (the transaction's sender)
#   models            n_models x (u8 len | name | u32 version)  (distinct model@version of this transaction)
#   callers           n_callers x 20 bytes                      (distinct paying accounts)
#   records           n_records x 32 bytes                      (distinct record hashes named by shares)
#   rows              n_rows x '<QQHHB': seq, charged, caller index, model index, number of shares
#   shares            n_shares x '<IH': record index, bp   (the rows' shares, in row order, as stored)
# Only receipts with charged > 0 have a row: nothing else moves money.

SR_HEADER = struct.Struct("<IIIHH")
SR_ROW = struct.Struct("<QQHHB")
SR_SHARE = struct.Struct("<IH")


def pack_settlement_rows(provider: bytes, receipts: list[StoredReceipt]) -> bytes:
    """The row block of one transaction's charged receipts (layout above)."""
    models: dict[tuple[str, int], int] = {}
    callers: dict[bytes, int] = {}
    records: dict[bytes, int] = {}
    rows = []
    shares = []
    for r in receipts:
        m = models.setdefault((r.model, r.version), len(models))
        c = callers.setdefault(r.caller, len(callers))
        rows.append(SR_ROW.pack(r.seq, r.charged, c, m, len(r.shares)))
        for x in r.shares:
            shares.append(SR_SHARE.pack(records.setdefault(x.record, len(records)), x.bp))
    head = SR_HEADER.pack(len(rows), len(shares), len(records), len(callers), len(models))
    table = b"".join(bytes([len(name.encode())]) + name.encode() + _U32.pack(v) for name, v in models)
    return b"".join([head, provider, table, *callers, *records, *rows, *shares])


def append_settlement_rows(state: Journal, height: int, provider: bytes, receipts: list[StoredReceipt]) -> None:
    """Store one transaction's row block for settlement at the end of this block (nothing if none charged)."""
    charged = [r for r in receipts if r.charged > 0]
    if not charged:
        return
    count_key = settlement_rows_count_key(height)
    raw = state.get(count_key)
    n = int(_U32.unpack(raw)[0]) if raw else 0
    state.set(settlement_rows_key(height, n), pack_settlement_rows(provider, charged))
    state.set(count_key, _U32.pack(n + 1))


# -- typed get/put --------------------------------------------------------------------------------

def get_u64(state: Reader, key: bytes) -> int:
    raw = state.get(key)
    return int(_U64.unpack(raw)[0]) if raw else 0


def put_u64(state: Journal, key: bytes, value: int) -> None:
    state.set(key, _U64.pack(value))


def has_account(state: Reader, address: bytes) -> bool:
    return state.get(account_key(address)) is not None


def get_account(state: Reader, address: bytes) -> BillingAccount:
    raw = state.get(account_key(address))
    return ACCOUNT.decode(raw) if raw else BillingAccount()


def put_account(state: Journal, address: bytes, acct: BillingAccount) -> None:
    """Store the account, listing its address the first time it is stored."""
    if not has_account(state, address):
        n = get_u64(state, ACCOUNT_COUNT_KEY)
        state.set(account_index_key(n), address)
        put_u64(state, ACCOUNT_COUNT_KEY, n + 1)
    state.set(account_key(address), ACCOUNT.encode(acct))


def get_key(state: Reader, key_hash: bytes) -> ApiKey | None:
    raw = state.get(api_key_key(key_hash))
    return API_KEY.decode(raw) if raw else None


def put_key(state: Journal, key: ApiKey) -> None:
    state.set(api_key_key(key.key_hash), API_KEY.encode(key))


def get_receipt(state: Reader, receipt_id: bytes) -> StoredReceipt | None:
    raw = state.get(receipt_key(receipt_id))
    return RECEIPT.decode(raw) if raw else None


def put_receipt(state: Journal, r: StoredReceipt) -> None:
    state.set(receipt_key(r.id), RECEIPT.encode(r))
