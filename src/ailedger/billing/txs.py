"""The handlers of the billing transactions (their wire format is in payloads.py).

Each handler checks everything before its first write. Value only moves between an account's
balance, its prepaid balance, its withdrawing bucket and the module's escrow, always by the same
amount on both sides, so the total supply is conserved (docs/billing.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from ailedger.billing import rules
from ailedger.billing.payloads import FULL_BP, NO_ATTRIBUTION, Amount, AuthorizeKey, KeyRef, Receipt, SubmitReceipts
from ailedger.billing.state import (
    ZERO_ADDRESS,
    ZERO_HASH,
    ApiKey,
    account_key_index_key,
    append_settlement_rows,
    expiry_key,
    get_account,
    get_key,
    get_receipt,
    put_account,
    put_key,
    release_key,
)
from ailedger.chain import accounts, params
from ailedger.chain.module import BlockContext
from ailedger.chain.queue import append_item
from ailedger.chain.state import Journal
from ailedger.chain.tx import Tx
from ailedger.core import errors
from ailedger.core.amounts import checked_add
from ailedger.core.errors import LedgerError


def _bad(detail: str) -> LedgerError:
    return LedgerError(errors.BAD_BILLING_PARAM, detail)


def apply_deposit(state: Journal, ctx: BlockContext, tx: Tx, p: Amount) -> None:
    accounts.require_positive(p.amount)
    sender = tx.sender_address
    acct = get_account(state, sender)
    acct.prepaid = checked_add(acct.prepaid, p.amount)
    accounts.debit(state, sender, p.amount)
    put_account(state, sender, acct)


def apply_withdraw(state: Journal, ctx: BlockContext, tx: Tx, p: Amount) -> None:
    accounts.require_positive(p.amount)
    sender = tx.sender_address
    acct = get_account(state, sender)
    if acct.prepaid < p.amount:
        raise LedgerError(errors.INSUFFICIENT_PREPAID, f"prepaid {acct.prepaid} < {p.amount}")
    release = ctx.height + params.get(state, "billing_withdraw_delay_blocks")
    if acct.release_height != release:
        append_item(state, release_key(release), sender)
    acct.prepaid -= p.amount
    acct.withdrawing += p.amount
    acct.release_height = release
    put_account(state, sender, acct)


def apply_authorize_key(state: Journal, ctx: BlockContext, tx: Tx, p: AuthorizeKey) -> None:
    if p.key_hash == ZERO_HASH:
        raise _bad("key_hash is all zeros; send billing.keys.api_key_hash of the key")
    if p.provider == ZERO_ADDRESS:
        raise _bad("provider is the zero address; name the serving provider's address")
    if p.allowance == 0:
        raise _bad("allowance must be at least one micro-unit")
    if p.expires != 0 and p.expires < ctx.height:
        raise _bad(f"expires {p.expires} is below the current height {ctx.height} (0 = never)")
    if get_key(state, p.key_hash) is not None:
        raise LedgerError(errors.API_KEY_EXISTS, p.key_hash.hex())
    owner = tx.sender_address
    acct = get_account(state, owner)
    cap = params.get(state, "billing_max_keys_per_account")
    if acct.live_keys >= cap:
        raise LedgerError(errors.TOO_MANY_KEYS, f"{acct.live_keys} live, billing_max_keys_per_account {cap}")
    put_key(state, ApiKey(p.key_hash, owner, p.provider, p.allowance, 0, p.expires, ctx.height))
    state.set(account_key_index_key(owner, acct.keys), p.key_hash)
    if p.expires:
        append_item(state, expiry_key(p.expires), p.key_hash)
    acct.keys += 1
    acct.live_keys += 1
    put_account(state, owner, acct)


def apply_revoke_key(state: Journal, ctx: BlockContext, tx: Tx, p: KeyRef) -> None:
    key = get_key(state, p.key_hash)
    if key is None:
        raise LedgerError(errors.API_KEY_NOT_FOUND, p.key_hash.hex())
    if key.account != tx.sender_address:
        raise LedgerError(errors.NOT_KEY_OWNER)
    if key.revoked:
        raise LedgerError(errors.API_KEY_REVOKED, f"at height {key.revoked_height}")
    was_live = not key.expired_at(ctx.height)
    key.revoked, key.revoked_height = 1, ctx.height
    put_key(state, key)
    if was_live:
        acct = get_account(state, key.account)
        acct.live_keys -= 1
        put_account(state, key.account, acct)


def shares_fault(shares: Sequence[tuple[bytes, int]]) -> str | None:
    """What is wrong with a receipt's (record, bp) split, or None: it is empty, or sums to exactly FULL_BP with no
    share above it and the records unique and in ascending byte order. Serving checks its attribution engine's
    output with the same rule before a receipt is built (serving/attribution_hook.py)."""
    for j, (record, bp) in enumerate(shares):
        if bp > FULL_BP:
            return f"share {j} is {bp} bp, above {FULL_BP}"
        if j and record <= shares[j - 1][0]:
            return f"share {j}: records must be unique and in ascending byte order"
    total = sum(bp for _, bp in shares)
    if shares and total != FULL_BP:
        return f"shares sum to {total} bp; they must sum to exactly {FULL_BP} (or be empty)"
    return None


def check_attribution(i: int, r: Receipt) -> None:
    """A receipt's attribution fields are whole or absent: settlement pays the data pool by `shares`.

    Why refuse the whole batch: shares that do not sum to the pool, or name a record twice, would
    make settlement's exact split ambiguous; that is a bug of the provider's software, not a call to
    account for. Ascending record hashes make the list canonical (one split, one encoding).
    A base-only call (version 0) learnt from no Datanet, so it pays no contributor.
    """
    if r.version == 0 and (r.shares or r.attribution != NO_ATTRIBUTION):
        raise _bad(f"receipt {i} is a base-only call (version 0) and may carry no attribution or shares")
    if not r.shares:
        return
    if r.attribution == NO_ATTRIBUTION:
        raise _bad(f"receipt {i} has shares but no attribution; send the record's digest with them")
    fault = shares_fault([(share.record, share.bp) for share in r.shares])
    if fault is not None:
        raise _bad(f"receipt {i} {fault}")


def apply_submit_receipts(state: Journal, ctx: BlockContext, tx: Tx, p: SubmitReceipts) -> None:
    """Structural faults refuse the whole batch; each receipt is then judged and stored on its own."""
    if not p.receipts:
        raise _bad("no receipts; send at least one")
    most = params.get(state, "billing_max_receipts_per_tx")
    if len(p.receipts) > most:
        raise LedgerError(errors.TOO_MANY_RECEIPTS, f"{len(p.receipts)} > billing_max_receipts_per_tx {most}")
    cites = params.get(state, "billing_max_citations")
    seen: set[bytes] = set()
    for i, r in enumerate(p.receipts):
        if r.id == ZERO_HASH:
            raise _bad(f"receipt {i} has an all-zero id")
        if r.id in seen or get_receipt(state, r.id) is not None:
            raise LedgerError(errors.DUPLICATE_RECEIPT, f"receipt {i}: {r.id.hex()}")
        seen.add(r.id)
        if len(r.citations) > cites:
            raise LedgerError(errors.TOO_MANY_CITATIONS,
                              f"receipt {i} cites {len(r.citations)} > billing_max_citations {cites}")
        check_attribution(i, r)
    stored = [rules.store_receipt(state, ctx, tx, r) for r in p.receipts]
    append_settlement_rows(state, ctx.height, tx.sender_address, stored)
