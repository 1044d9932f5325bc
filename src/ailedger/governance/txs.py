"""Governance transactions: `propose` (0x0701), `deposit` (0x0702), `vote` (0x0703), `fund_treasury` (0x0704).

Each checks everything it needs before its first write, so a refused transaction leaves state as it
was (the runtime also rolls back any partial write of a failed handler). There is no `execute`
transaction: a passed proposal executes in the end_block of the block its timelock names, so
nobody can run it early and nobody needs to remember to run it.
"""

from __future__ import annotations

from ailedger.chain import accounts, params
from ailedger.chain.module import BlockContext
from ailedger.chain.params import ParamRegistry
from ailedger.chain.state import Journal
from ailedger.chain.tx import Tx
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.governance import rules
from ailedger.governance.payloads import OPTION_NAMES, Deposit, Fund, Kind, Option, Propose, Vote, check_shape
from ailedger.governance.state import (
    BODY,
    COUNT_KEY,
    TREASURY_KEY,
    Body,
    Header,
    Status,
    add_deposit,
    body_key,
    get_header,
    get_u64,
    get_vote,
    put_header,
    put_u64,
    put_vote,
    schedule,
)

PROPOSE = 0x0701
DEPOSIT = 0x0702
VOTE = 0x0703
FUND = 0x0704


def apply_propose(state: Journal, ctx: BlockContext, tx: Tx, p: Propose, registry: ParamRegistry) -> None:
    check_shape(p)
    rules.check_changes(registry, state, p.changes)
    if p.kind == Kind.TREASURY_SPEND:
        rules.check_spend(state, p.amount)
    minimum = params.get(state, "gov_min_deposit")
    initial = max(1, minimum * params.get(state, "gov_min_initial_deposit_bps") // rules.BPS)
    if p.deposit < initial:
        raise LedgerError(errors.GOV_DEPOSIT_TOO_LOW, f"deposit {p.deposit} < {initial}")
    sender = tx.sender_address
    accounts.debit(state, sender, p.deposit)
    pid = get_u64(state, COUNT_KEY) + 1
    put_u64(state, COUNT_KEY, pid)
    h = Header(p.kind, Status.DEPOSIT, sender, ctx.height,
               ctx.height + params.get(state, "gov_deposit_period_blocks"), p.deposit)
    state.set(body_key(pid), BODY.encode(Body(p.title, p.text, p.changes, p.recipient, p.amount)))
    add_deposit(state, pid, sender, p.deposit)
    schedule(state, h.deposit_end, pid)
    rules.maybe_open(state, ctx.height, pid, h)
    put_header(state, pid, h)


def apply_deposit(state: Journal, ctx: BlockContext, tx: Tx, p: Deposit) -> None:
    accounts.require_positive(p.amount)
    h = get_header(state, p.proposal)
    if h.status != Status.DEPOSIT:
        raise LedgerError(errors.GOV_NOT_IN_DEPOSIT, f"proposal {p.proposal} is past its deposit period")
    accounts.debit(state, tx.sender_address, p.amount)
    add_deposit(state, p.proposal, tx.sender_address, p.amount)
    h.deposit += p.amount
    rules.maybe_open(state, ctx.height, p.proposal, h)
    put_header(state, p.proposal, h)


def apply_vote(state: Journal, ctx: BlockContext, tx: Tx, p: Vote) -> None:
    """Weigh the vote by the voter's bonded stake at the end of the block before voting opened; a
    second vote on the same proposal replaces the first (same weight, new option)."""
    if p.option not in OPTION_NAMES:
        raise LedgerError(errors.GOV_BAD_OPTION, f"option {p.option}")
    h = get_header(state, p.proposal)
    if h.status == Status.DEPOSIT:
        raise LedgerError(errors.GOV_NOT_IN_VOTING, f"proposal {p.proposal} is in its deposit period")
    if h.status != Status.VOTING:
        raise LedgerError(errors.GOV_VOTING_CLOSED, f"proposal {p.proposal} voting ended at {h.voting_end}")
    voter = tx.sender_address
    earlier = get_vote(state, p.proposal, voter)
    if earlier is None:
        weight = accounts.stake_at(state, voter, h.voting_start - 1)
        if weight == 0:
            raise LedgerError(errors.GOV_NO_VOTING_POWER, f"no stake at height {h.voting_start - 1}")
        h.voters += 1
    else:
        option, weight = earlier
        _add(h, option, -weight)
    _add(h, p.option, weight)
    put_vote(state, p.proposal, voter, p.option, weight)
    put_header(state, p.proposal, h)


def _add(h: Header, option: int, weight: int) -> None:
    if option == Option.YES:
        h.yes += weight
    elif option == Option.NO:
        h.no += weight
    elif option == Option.ABSTAIN:
        h.abstain += weight
    else:
        h.veto += weight


def apply_fund(state: Journal, ctx: BlockContext, tx: Tx, p: Fund) -> None:
    accounts.require_positive(p.amount)
    accounts.debit(state, tx.sender_address, p.amount)
    put_u64(state, TREASURY_KEY, get_u64(state, TREASURY_KEY) + p.amount)
