"""The accounts module: balances, nonces, stake, and stake that is unbonding.

State:
  acct/<20-byte address>   -> u64 balance | u64 nonce | u64 stake | u64 unbonding
  unbond/<u64 height>      -> repeated (b20 address | u64 amount): stake released at that height
  stk/total                -> u64 total bonded stake now (written at genesis)
  stk/n/<b20 address>      -> u32 number of stake checkpoints of the address
  stk/e/<b20 address><u32 i> -> checkpoint i: u64 height H | u64 stake at the end of block H - 1
  stk/tn, stk/te/<u32 i>   -> the same checkpoints for the total bonded stake

Why a release queue keyed by height: unbonding must finish by itself at a known block, without a
transaction, so the end-of-block hook needs to find exactly the entries due now in one read.

Why stake checkpoints: governance weighs a vote by the bonded stake at the block voting opened, so
stake bonded after the fact buys nothing. The first change of an address's stake in block H appends
(H, the stake it had before block H); later changes in the same block append nothing. The stake at
the end of block h is then the `before` of the first checkpoint with height > h, or the current
stake if there is none: a binary search over indexed keys, and no row at all for an address whose
stake never changed since genesis. Every change of bonded stake goes through `set_stake` (a test
scans the source for any other write of `.stake`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ailedger.chain import params
from ailedger.chain.genesis import Genesis
from ailedger.chain.module import BlockContext, Module, TxType
from ailedger.chain.params import ParamSpec, Reader
from ailedger.chain.state import Journal
from ailedger.chain.tx import Tx
from ailedger.core import errors
from ailedger.core.encoding import AMOUNT, B20, MAX_AMOUNT, Record
from ailedger.core.errors import LedgerError

PREFIX = b"acct/"
UNBOND_PREFIX = b"unbond/"
TOTAL_STAKE_KEY = b"stk/total"
STAKE_COUNT_PREFIX = b"stk/n/"
STAKE_ENTRY_PREFIX = b"stk/e/"
TOTAL_COUNT_KEY = b"stk/tn"
TOTAL_ENTRY_PREFIX = b"stk/te/"
_ACCOUNT = struct.Struct(">QQQQ")
_ENTRY = struct.Struct(">20sQ")
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_CHECKPOINT = struct.Struct(">QQ")

TRANSFER = 0x0101
STAKE = 0x0102
UNSTAKE = 0x0103


@dataclass
class Account:
    balance: int = 0
    nonce: int = 0
    stake: int = 0
    unbonding: int = 0

    def to_json(self) -> dict[str, int]:
        return {"balance": self.balance, "nonce": self.nonce, "stake": self.stake, "unbonding": self.unbonding}


def encode_account(a: Account) -> bytes:
    return _ACCOUNT.pack(a.balance, a.nonce, a.stake, a.unbonding)


def decode_account(raw: bytes) -> Account:
    return Account(*_ACCOUNT.unpack(raw))


def account_key(address: bytes) -> bytes:
    return PREFIX + address


def get_account(state: Journal, address: bytes) -> Account:
    raw = state.get(PREFIX + address)
    return Account(*_ACCOUNT.unpack(raw)) if raw else Account()


def put_account(state: Journal, address: bytes, a: Account) -> None:
    state.set(PREFIX + address, _ACCOUNT.pack(a.balance, a.nonce, a.stake, a.unbonding))


def credit(state: Journal, address: bytes, amount: int) -> None:
    a = get_account(state, address)
    a.balance += amount
    if a.balance > MAX_AMOUNT:
        raise LedgerError(errors.OVERFLOW, "recipient balance")
    put_account(state, address, a)


def debit(state: Journal, address: bytes, amount: int) -> None:
    a = get_account(state, address)
    if a.balance < amount:
        raise LedgerError(errors.INSUFFICIENT_BALANCE, f"balance {a.balance} < {amount}")
    a.balance -= amount
    put_account(state, address, a)


# -- stake checkpoints (module docstring) -----------------------------------------------------------

def _count(state: Reader, key: bytes) -> int:
    raw = state.get(key)
    return int(_U32.unpack(raw)[0]) if raw else 0


def _checkpoint(state: Reader, prefix: bytes, i: int) -> tuple[int, int]:
    raw = state.get(prefix + _U32.pack(i))
    if raw is None:
        raise LedgerError(errors.STORE_CORRUPT, f"stake checkpoint {i} missing under {prefix!r}")
    height, before = _CHECKPOINT.unpack(raw)
    return int(height), int(before)


def _note(state: Journal, count_key: bytes, prefix: bytes, height: int, before: int) -> None:
    """Append (height, before) unless this block already recorded the value it started with."""
    n = _count(state, count_key)
    if n and _checkpoint(state, prefix, n - 1)[0] >= height:
        return
    state.set(prefix + _U32.pack(n), _CHECKPOINT.pack(height, before))
    state.set(count_key, _U32.pack(n + 1))


def _value_at(state: Reader, count_key: bytes, prefix: bytes, height: int, current: int) -> int:
    lo, hi = 0, _count(state, count_key)
    while lo < hi:  # first checkpoint made after block `height`
        mid = (lo + hi) // 2
        if _checkpoint(state, prefix, mid)[0] <= height:
            lo = mid + 1
        else:
            hi = mid
    return current if lo == _count(state, count_key) else _checkpoint(state, prefix, lo)[1]


def total_stake(state: Reader) -> int:
    raw = state.get(TOTAL_STAKE_KEY)
    return int(_U64.unpack(raw)[0]) if raw else 0


def set_stake(state: Journal, height: int, address: bytes, acct: Account, stake: int) -> None:
    """Change `acct`'s bonded stake to `stake` in block `height`, keeping the checkpoints and the total;
    the caller stores `acct` (it usually changes its balance too)."""
    if stake == acct.stake:
        return
    _note(state, STAKE_COUNT_PREFIX + address, STAKE_ENTRY_PREFIX + address, height, acct.stake)
    total = total_stake(state)
    _note(state, TOTAL_COUNT_KEY, TOTAL_ENTRY_PREFIX, height, total)
    state.set(TOTAL_STAKE_KEY, _U64.pack(total - acct.stake + stake))
    acct.stake = stake


def stake_at(state: Reader, address: bytes, height: int) -> int:
    """Bonded stake of `address` at the end of block `height` (genesis is height 0)."""
    raw = state.get(PREFIX + address)
    current = _ACCOUNT.unpack(raw)[2] if raw else 0
    return _value_at(state, STAKE_COUNT_PREFIX + address, STAKE_ENTRY_PREFIX + address, height, current)


def total_stake_at(state: Reader, height: int) -> int:
    """Total bonded stake at the end of block `height`."""
    return _value_at(state, TOTAL_COUNT_KEY, TOTAL_ENTRY_PREFIX, height, total_stake(state))


@dataclass(frozen=True)
class Transfer:
    to: bytes
    amount: int


@dataclass(frozen=True)
class Amount:
    amount: int


TRANSFER_CODEC = Record(Transfer, {"to": B20, "amount": AMOUNT})
AMOUNT_CODEC = Record(Amount, {"amount": AMOUNT})


def require_positive(amount: int) -> None:
    """Amounts are unsigned by their codec; zero is the one value no transfer, stake or deposit may carry."""
    if amount == 0:
        raise LedgerError(errors.ZERO_AMOUNT)


def apply_transfer(state: Journal, ctx: BlockContext, tx: Tx, p: Transfer) -> None:
    require_positive(p.amount)
    sender = tx.sender_address
    if p.to == sender:
        raise LedgerError(errors.SELF_TRANSFER)
    debit(state, sender, p.amount)
    credit(state, p.to, p.amount)


def apply_stake(state: Journal, ctx: BlockContext, tx: Tx, p: Amount) -> None:
    require_positive(p.amount)
    a = get_account(state, tx.sender_address)
    if a.balance < p.amount:
        raise LedgerError(errors.INSUFFICIENT_BALANCE, f"balance {a.balance} < stake {p.amount}")
    a.balance -= p.amount
    set_stake(state, ctx.height, tx.sender_address, a, a.stake + p.amount)
    put_account(state, tx.sender_address, a)


def apply_unstake(state: Journal, ctx: BlockContext, tx: Tx, p: Amount) -> None:
    require_positive(p.amount)
    addr = tx.sender_address
    a = get_account(state, addr)
    if a.stake < p.amount:
        raise LedgerError(errors.INSUFFICIENT_STAKE, f"stake {a.stake} < {p.amount}")
    set_stake(state, ctx.height, addr, a, a.stake - p.amount)
    a.unbonding += p.amount
    put_account(state, addr, a)
    release = ctx.height + params.get(state, "unbonding_blocks")
    key = UNBOND_PREFIX + _U64.pack(release)
    state.set(key, (state.get(key) or b"") + _ENTRY.pack(addr, p.amount))


def pending_unbonds(state: Journal, height: int) -> list[tuple[bytes, int]]:
    raw = state.get(UNBOND_PREFIX + _U64.pack(height)) or b""
    return [_ENTRY.unpack_from(raw, i) for i in range(0, len(raw), _ENTRY.size)]


class AccountsModule(Module):
    def __init__(self) -> None:
        super().__init__(
            name="accounts",
            number=1,
            tx_types=[
                TxType(TRANSFER, "transfer", TRANSFER_CODEC, apply_transfer, "Move an amount to another account."),
                TxType(STAKE, "stake", AMOUNT_CODEC, apply_stake, "Bond part of the balance as stake."),
                TxType(UNSTAKE, "unstake", AMOUNT_CODEC, apply_unstake,
                       "Start unbonding stake; it returns to the balance after `unbonding_blocks`."),
            ],
            params=[
                ParamSpec("min_fee", 1_000, 0, MAX_AMOUNT, "micro-units",
                          "Smallest fee a transaction may carry; it pays the block proposer."),
                ParamSpec("unbonding_blocks", 100, 1, 10_000_000, "blocks",
                          "Blocks between an unstake and the stake returning to the balance."),
            ],
        )

    def init_genesis(self, state: Journal, genesis: Genesis) -> None:
        for alloc in genesis.allocations:
            put_account(state, alloc.address, Account(balance=alloc.balance, stake=alloc.stake))
        state.set(TOTAL_STAKE_KEY, _U64.pack(sum(a.stake for a in genesis.allocations)))

    def end_block(self, state: Journal, ctx: BlockContext) -> None:
        due = pending_unbonds(state, ctx.height)
        if not due:
            return
        for addr, amount in due:
            a = get_account(state, addr)
            a.unbonding -= amount
            a.balance += amount
            put_account(state, addr, a)
        state.delete(UNBOND_PREFIX + _U64.pack(ctx.height))
