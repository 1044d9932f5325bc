"""How a receipt is judged and charged, and what end_block releases.

The fee rule (integers only, rounded up so a call is never free by rounding):
    fee = ceil((prompt_tokens + completion_tokens) * price / 1000)
        = ((prompt_tokens + completion_tokens) * price + 999) // 1000
where price is the adapter version's `price_per_1k_tokens` as in force when the receipt is stored,
or the `billing_base_price_per_1k` parameter for a base-only call (version 0). A fee above
2^63-1 is recorded as 2^63-1 (no account could pay more anyway).

    charged = min(fee, allowance - spent, prepaid + withdrawing)

is taken from the caller's prepaid balance first, then from its withdrawing bucket, and moves into
the module's escrow (`bil/escrow`) until settlement splits it; the key's `spent` grows by it.
Charging less than the fee marks the receipt `short`. A receipt the ledger cannot charge (unknown,
foreign, revoked or expired key; unknown model; hashes that differ from the registry) is stored
anyway with its rejection status and charged 0, so every call the provider saw is accounted for.
A retired model version that answered is still charged: the call happened.
"""

from __future__ import annotations

from ailedger.billing.payloads import Receipt
from ailedger.billing.state import (
    ESCROW_KEY,
    RECEIPT_COUNT_KEY,
    ZERO_ADDRESS,
    ZERO_HASH,
    ApiKey,
    ReceiptStatus,
    StoredReceipt,
    expiry_key,
    get_account,
    get_key,
    get_u64,
    key_receipt_key,
    put_account,
    put_key,
    put_receipt,
    put_u64,
    release_key,
    unsettled_key,
)
from ailedger.chain import accounts, params
from ailedger.chain.module import BlockContext
from ailedger.chain.params import Reader
from ailedger.chain.queue import items
from ailedger.chain.state import Journal
from ailedger.chain.tx import Tx
from ailedger.core.encoding import MAX_AMOUNT
from ailedger.models import state as models


def receipt_fee(tokens: int, price_per_1k: int) -> int:
    """ceil(tokens * price_per_1k / 1000), capped at 2^63-1: the fee of a call of `tokens` tokens."""
    return min((tokens * price_per_1k + 999) // 1000, MAX_AMOUNT)


def _model_price(state: Reader, r: Receipt) -> tuple[int | None, int]:
    """(unknown_model, hash_mismatch or None, price per 1k) for the model the receipt names."""
    if r.version == 0:
        base = models.get_base(state, r.model) if models.name_ok(r.model) else None
        if base is None:
            return ReceiptStatus.UNKNOWN_MODEL, 0
        if r.base_hash != base.weights_hash or r.adapter_hash != ZERO_HASH:
            return ReceiptStatus.HASH_MISMATCH, 0
        return None, params.get(state, "billing_base_price_per_1k")
    adapter = models.get_adapter(state, r.model, r.version) if models.name_ok(r.model) else None
    if adapter is None:
        return ReceiptStatus.UNKNOWN_MODEL, 0
    if r.adapter_hash != adapter.adapter_hash or r.base_hash != adapter.base_hash:
        return ReceiptStatus.HASH_MISMATCH, 0
    return None, adapter.price_per_1k_tokens


def judge(state: Reader, height: int, provider: bytes, key: ApiKey | None, r: Receipt) -> tuple[int | None, int]:
    """(rejection status or None, price per 1k): the checks in the order their status is reported."""
    if key is None:
        return ReceiptStatus.UNKNOWN_KEY, 0
    if key.provider != provider:
        return ReceiptStatus.WRONG_PROVIDER, 0
    if key.revoked:
        return ReceiptStatus.REVOKED_KEY, 0
    if key.expired_at(height):
        return ReceiptStatus.EXPIRED_KEY, 0
    return _model_price(state, r)


def charge(state: Journal, key: ApiKey, fee: int) -> int:
    """Move min(fee, allowance left, prepaid + withdrawing) into escrow; returns the amount charged."""
    acct = get_account(state, key.account)
    charged = min(fee, key.allowance - key.spent, acct.available)
    if charged <= 0:
        return 0
    from_prepaid = min(charged, acct.prepaid)
    acct.prepaid -= from_prepaid
    acct.withdrawing -= charged - from_prepaid
    put_account(state, key.account, acct)
    key.spent += charged
    put_u64(state, ESCROW_KEY, get_u64(state, ESCROW_KEY) + charged)
    return charged


def store_receipt(state: Journal, ctx: BlockContext, tx: Tx, r: Receipt) -> StoredReceipt:
    """Judge, charge (if it may be charged) and store one receipt of a submit_receipts transaction."""
    provider = tx.sender_address
    key = get_key(state, r.key_hash)
    status, price = judge(state, ctx.height, provider, key, r)
    fee = charged = 0
    if status is None:
        assert key is not None
        fee = receipt_fee(r.prompt_tokens + r.completion_tokens, price)
        charged = charge(state, key, fee)
        status = ReceiptStatus.CHARGED if charged == fee else ReceiptStatus.SHORT
    seq = get_u64(state, RECEIPT_COUNT_KEY)
    stored = StoredReceipt(r.id, r.key_hash, r.model, r.version, r.base_hash, r.adapter_hash, r.prompt_tokens,
                           r.completion_tokens, list(r.citations), r.attribution, list(r.shares),
                           key.account if key else ZERO_ADDRESS, provider,
                           price, fee, charged, status, ctx.height, tx.id, seq)
    put_receipt(state, stored)
    state.set(unsettled_key(seq), r.id)
    put_u64(state, RECEIPT_COUNT_KEY, seq + 1)
    if key is not None:
        state.set(key_receipt_key(key.key_hash, key.receipts), r.id)
        key.receipts += 1
        put_key(state, key)
    return stored


def release_withdrawals(state: Journal, height: int) -> None:
    """Return each withdrawing bucket due at `height` to its account's balance."""
    key = release_key(height)
    due = items(state, key, 20)
    if not due:
        return
    for address in due:
        acct = get_account(state, address)
        if acct.release_height != height:
            continue  # a later withdraw moved it, or it was already released
        amount, acct.withdrawing, acct.release_height = acct.withdrawing, 0, 0
        put_account(state, address, acct)
        if amount:
            accounts.credit(state, address, amount)
    state.delete(key)


def expire_keys(state: Journal, height: int) -> None:
    """Keys whose last height is `height` stop counting as live (unless revoked already)."""
    key = expiry_key(height)
    due = items(state, key, 32)
    if not due:
        return
    for key_hash in due:
        api_key = get_key(state, key_hash)
        if api_key is None or api_key.revoked or api_key.expires != height:
            continue
        acct = get_account(state, api_key.account)
        acct.live_keys -= 1
        put_account(state, api_key.account, acct)
    state.delete(key)
