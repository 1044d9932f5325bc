"""Read helpers over billing state (service.py turns them into JSON; tests sum the holdings)."""

from __future__ import annotations

from ailedger.billing.state import (
    ACCOUNT_COUNT_KEY,
    ESCROW_KEY,
    RECEIPT_COUNT_KEY,
    UNSETTLED_HEAD_KEY,
    ApiKey,
    BillingAccount,
    StoredReceipt,
    account_index_key,
    account_key_index_key,
    get_account,
    get_key,
    get_receipt,
    get_u64,
    key_receipt_key,
    unsettled_key,
)
from ailedger.chain.params import Reader

__all__ = ["account_keys", "escrowed", "get_account", "get_key", "get_receipt", "holdings", "key_receipts",
           "receipt_count", "receipts_in_order", "unsettled_count"]


def account_keys(state: Reader, address: bytes, acct: BillingAccount | None = None,
                 most: int | None = None) -> list[ApiKey]:
    """The account's API keys in authorization order (the last `most` of them when given)."""
    acct = acct if acct is not None else get_account(state, address)
    first = 0 if most is None else max(0, acct.keys - most)
    out = []
    for n in range(first, acct.keys):
        key = get_key(state, state.get(account_key_index_key(address, n)) or b"")
        if key is not None:
            out.append(key)
    return out


def _receipts(state: Reader, ids: list[bytes | None]) -> list[StoredReceipt]:
    return [r for r in (get_receipt(state, i) for i in ids if i) if r is not None]


def key_receipts(state: Reader, key: ApiKey, offset: int, limit: int) -> list[StoredReceipt]:
    """Receipts stored against `key`, oldest first, from `offset`."""
    stop = min(key.receipts, offset + limit)
    return _receipts(state, [state.get(key_receipt_key(key.key_hash, n)) for n in range(offset, stop)])


def receipts_in_order(state: Reader, offset: int, limit: int) -> list[StoredReceipt]:
    """Every receipt in ledger order (the sequence of bil/unsettled), from `offset`."""
    stop = min(receipt_count(state), offset + limit)
    return _receipts(state, [state.get(unsettled_key(n)) for n in range(offset, stop)])


def receipt_count(state: Reader) -> int:
    return get_u64(state, RECEIPT_COUNT_KEY)


def unsettled_count(state: Reader) -> int:
    return receipt_count(state) - get_u64(state, UNSETTLED_HEAD_KEY)


def escrowed(state: Reader) -> int:
    """Fees charged by receipts and not yet settled."""
    return get_u64(state, ESCROW_KEY)


def holdings(state: Reader) -> int:
    """Everything the module holds: every prepaid balance and withdrawing bucket, plus the escrow.

    Part of the total supply (balances + stakes + unbonding + ... + this).
    """
    total = escrowed(state)
    for i in range(get_u64(state, ACCOUNT_COUNT_KEY)):
        acct = get_account(state, state.get(account_index_key(i)) or bytes(20))
        total += acct.available
    return total
