"""The accounts module: balances, nonces, stake, and stake that is unbonding.

State:
  acct/<20-byte address>   -> u64 balance | u64 nonce | u64 stake | u64 unbonding
  unbond/<u64 height>      -> repeated (b20 address | u64 amount): stake released at that height

Why a release queue keyed by height: unbonding must finish by itself at a known block, without a
transaction, so the end-of-block hook needs to find exactly the entries due now in one read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ailedger.chain import params
from ailedger.chain.genesis import Genesis
from ailedger.chain.module import BlockContext, Module, TxType
from ailedger.chain.params import ParamSpec
from ailedger.chain.state import Journal
from ailedger.chain.tx import Tx
from ailedger.core import errors
from ailedger.core.encoding import AMOUNT, B20, MAX_AMOUNT, Record
from ailedger.core.errors import LedgerError

PREFIX = b"acct/"
UNBOND_PREFIX = b"unbond/"
_ACCOUNT = struct.Struct(">QQQQ")
_ENTRY = struct.Struct(">20sQ")
_U64 = struct.Struct(">Q")

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
    a.stake += p.amount
    put_account(state, tx.sender_address, a)


def apply_unstake(state: Journal, ctx: BlockContext, tx: Tx, p: Amount) -> None:
    require_positive(p.amount)
    addr = tx.sender_address
    a = get_account(state, addr)
    if a.stake < p.amount:
        raise LedgerError(errors.INSUFFICIENT_STAKE, f"stake {a.stake} < {p.amount}")
    a.stake -= p.amount
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
