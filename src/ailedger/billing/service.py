"""Billing reads as JSON, for the HTTP API (`/v1/billing/…`), the embedded CLI and serving providers.

The same split as `models/service.py`: plain functions over a state reader and the head height,
and `BillingReads`, which runs them under a node's lock so that both backends answer the same
bytes. `key_json` is what a serving provider asks before admitting a request: one call gives the
key, its remaining allowance and the paying account's funds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ailedger.billing import views
from ailedger.billing.state import UNSETTLED_HEAD_KEY, ApiKey, BillingAccount, StoredReceipt, get_u64
from ailedger.chain.node import Node
from ailedger.chain.params import Reader
from ailedger.core import errors
from ailedger.core.address import decode_address, encode_address
from ailedger.core.errors import LedgerError
from ailedger.core.hexid import parse_hex32

T = TypeVar("T")
MAX_PAGE = 1_000
KEYS_SHOWN = 256  # an account view lists its most recent keys, up to this many


def parse_key_hash(text: str) -> bytes:
    return parse_hex32(text, errors.BAD_KEY_HASH)


def parse_receipt_id(text: str) -> bytes:
    return parse_hex32(text, errors.BAD_RECEIPT_ID)


def key_doc(key: ApiKey, acct: BillingAccount, height: int) -> dict[str, Any]:
    """A key with what admitting a call needs; `live` says whether a receipt in the next block may be charged."""
    live = not key.revoked and not key.expired_at(height + 1)
    return {"key_hash": key.key_hash.hex(), "account": encode_address(key.account),
            "provider": encode_address(key.provider), "allowance": key.allowance, "spent": key.spent,
            "remaining": key.allowance - key.spent, "expires": key.expires, "revoked": bool(key.revoked),
            "revoked_height": key.revoked_height if key.revoked else None, "created_height": key.created_height,
            "live": live, "receipts": key.receipts, "account_prepaid": acct.prepaid,
            "account_withdrawing": acct.withdrawing}


def account_json(state: Reader, height: int, address: str) -> dict[str, Any]:
    """An account's prepaid balance, withdrawing bucket and (most recent) API keys; zeros if it never deposited."""
    raw = decode_address(address)
    acct = views.get_account(state, raw)
    keys = views.account_keys(state, raw, acct, KEYS_SHOWN)
    return {"address": encode_address(raw), "prepaid": acct.prepaid, "withdrawing": acct.withdrawing,
            "release_height": acct.release_height or None, "available": acct.available,
            "live_keys": acct.live_keys, "keys_total": acct.keys, "keys": [key_doc(k, acct, height) for k in keys],
            "height": height}


def _key(state: Reader, key_hash_hex: str) -> ApiKey:
    key = views.get_key(state, parse_key_hash(key_hash_hex))
    if key is None:
        raise LedgerError(errors.API_KEY_NOT_FOUND, key_hash_hex)
    return key


def key_json(state: Reader, height: int, key_hash_hex: str) -> dict[str, Any]:
    key = _key(state, key_hash_hex)
    return {**key_doc(key, views.get_account(state, key.account), height), "height": height}


def receipt_json(state: Reader, height: int, id_hex: str) -> dict[str, Any]:
    receipt = views.get_receipt(state, parse_receipt_id(id_hex))
    if receipt is None:
        raise LedgerError(errors.RECEIPT_NOT_FOUND, id_hex)
    return _receipt_doc(state, receipt)  # its "height" is the block that stored it


def _receipt_doc(state: Reader, receipt: StoredReceipt) -> dict[str, Any]:
    """A receipt as shown: settled once settlement's head (`bil/uhead`) has passed its sequence number."""
    return {**receipt.to_json(), "settled": receipt.seq < get_u64(state, UNSETTLED_HEAD_KEY)}


def receipts_json(state: Reader, height: int, key_hash_hex: str | None = None, offset: int = 0,
                  limit: int = 100) -> dict[str, Any]:
    """A page of receipts, oldest first: those of one key, or every receipt in ledger order."""
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise LedgerError(errors.BAD_REQUEST, f"offset must be >= 0 and limit within 1..{MAX_PAGE}")
    if key_hash_hex is not None:
        key = _key(state, key_hash_hex)
        total, found = key.receipts, views.key_receipts(state, key, offset, limit)
    else:
        total, found = views.receipt_count(state), views.receipts_in_order(state, offset, limit)
    end = offset + len(found)
    return {"height": height, "key_hash": None if key_hash_hex is None else key_hash_hex.lower(), "offset": offset,
            "total": total, "receipts": [_receipt_doc(state, r) for r in found],
            "next_offset": end if end < total else None}


def escrow_json(state: Reader, height: int) -> dict[str, Any]:
    """What receipts have charged and settlement has not yet paid out, and how many receipts there are."""
    return {"height": height, "escrowed": views.escrowed(state), "receipts": views.receipt_count(state),
            "unsettled": views.unsettled_count(state)}


class BillingReads:
    """The reads above over a node's committed state, under its lock."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with self.node.lock:
            return fn(self.node.state, self.node.store.height(), *args)

    def account(self, address: str) -> dict[str, Any]:
        return self._read(account_json, address)

    def key(self, key_hash_hex: str) -> dict[str, Any]:
        return self._read(key_json, key_hash_hex)

    def receipt(self, id_hex: str) -> dict[str, Any]:
        return self._read(receipt_json, id_hex)

    def receipts(self, key_hash_hex: str | None = None, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        return self._read(receipts_json, key_hash_hex, offset, limit)

    def escrow(self) -> dict[str, Any]:
        return self._read(escrow_json)
