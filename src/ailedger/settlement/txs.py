"""The settlement transaction: `withdraw` (0x0601) moves earnings to the spendable balance.

Why earnings are a balance of their own: a payout is a ledger fact with a trail (lines, receipts),
and the holder decides when to move it; the quality gate's vesting (held) is never withdrawable.
"""

from __future__ import annotations

from dataclasses import dataclass

from ailedger.chain import accounts
from ailedger.chain.module import BlockContext
from ailedger.chain.state import Journal
from ailedger.chain.tx import Tx
from ailedger.core import errors
from ailedger.core.encoding import AMOUNT, Record
from ailedger.core.errors import LedgerError
from ailedger.settlement.state import get_earnings, get_totals, put_earnings, put_totals

WITHDRAW = 0x0601


@dataclass(frozen=True)
class Withdraw:
    amount: int


WITHDRAW_CODEC = Record(Withdraw, {"amount": AMOUNT})


def apply_withdraw(state: Journal, ctx: BlockContext, tx: Tx, p: Withdraw) -> None:
    accounts.require_positive(p.amount)
    sender = tx.sender_address
    e = get_earnings(state, sender)
    if e.balance < p.amount:
        raise LedgerError(errors.INSUFFICIENT_EARNINGS, f"earnings balance {e.balance} < {p.amount}")
    e.balance -= p.amount
    e.withdrawn += p.amount
    put_earnings(state, sender, e)
    accounts.credit(state, sender, p.amount)
    totals = get_totals(state)
    totals.withdrawn += p.amount
    put_totals(state, totals)
