"""Governance transaction payloads (0x0701..0x0704) and the vocabulary they use: kinds, options, changes.

Why one `Propose` record for every kind: the three kinds share the deposit, the lifecycle and the
tally; a kind only decides which of the fields (`changes`, `recipient`/`amount`) must be filled and
which must be empty, and `check_shape` says so before any state is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ailedger.core import errors
from ailedger.core.encoding import AMOUNT, B20, U8, U64, ListOf, Record, Text
from ailedger.core.errors import LedgerError

MAX_TITLE = 140
MAX_TEXT = 8_000
MAX_CHANGES = 32
MAX_PARAM_NAME = 64


class Kind:
    """What a proposal does once it passes (plain ints: the codec writes exact ints)."""

    PARAM_CHANGE = 1  # put one or several parameter values in force, all together or none
    TEXT = 2  # a recorded opinion of the stakers; executing it changes nothing
    TREASURY_SPEND = 3  # pay `amount` from the treasury to `recipient`


KIND_NAMES = {Kind.PARAM_CHANGE: "param_change", Kind.TEXT: "text", Kind.TREASURY_SPEND: "treasury_spend"}


class Option:
    YES = 1
    NO = 2
    ABSTAIN = 3
    VETO = 4


OPTION_NAMES = {Option.YES: "yes", Option.NO: "no", Option.ABSTAIN: "abstain", Option.VETO: "veto"}


@dataclass(frozen=True)
class ParamChange:
    name: str
    value: int


@dataclass(frozen=True)
class Propose:
    kind: int
    title: str
    text: str
    deposit: int  # the proposer's own deposit, taken from the balance with the proposal
    changes: list[ParamChange] = field(default_factory=list)  # PARAM_CHANGE only
    recipient: bytes = bytes(20)  # TREASURY_SPEND only
    amount: int = 0  # TREASURY_SPEND only


@dataclass(frozen=True)
class Deposit:
    proposal: int
    amount: int


@dataclass(frozen=True)
class Vote:
    proposal: int
    option: int


@dataclass(frozen=True)
class Fund:
    amount: int


PARAM_CHANGE_CODEC = Record(ParamChange, {"name": Text(MAX_PARAM_NAME), "value": U64})
PROPOSE_CODEC = Record(Propose, {"kind": U8, "title": Text(MAX_TITLE), "text": Text(MAX_TEXT), "deposit": AMOUNT,
                                 "changes": ListOf(PARAM_CHANGE_CODEC, MAX_CHANGES), "recipient": B20,
                                 "amount": AMOUNT})
DEPOSIT_CODEC = Record(Deposit, {"proposal": U64, "amount": AMOUNT})
VOTE_CODEC = Record(Vote, {"proposal": U64, "option": U8})
FUND_CODEC = Record(Fund, {"amount": AMOUNT})


def check_shape(p: Propose) -> None:
    """The fields a kind needs are filled and the others empty; no state is needed to say so."""
    if p.kind not in KIND_NAMES:
        raise LedgerError(errors.GOV_BAD_PROPOSAL, f"unknown kind {p.kind}")
    if not p.title.strip():
        raise LedgerError(errors.GOV_BAD_PROPOSAL, "the title is empty")
    spend = p.recipient != bytes(20) or p.amount != 0
    if p.kind == Kind.PARAM_CHANGE:
        if not p.changes or spend:
            raise LedgerError(errors.GOV_BAD_PROPOSAL, "a parameter change names at least one change and no spend")
        names = [c.name for c in p.changes]
        if len(set(names)) != len(names):
            raise LedgerError(errors.GOV_BAD_PROPOSAL, "a parameter is named twice")
    elif p.kind == Kind.TEXT:
        if p.changes or spend:
            raise LedgerError(errors.GOV_BAD_PROPOSAL, "a text proposal carries no change and no spend")
    else:
        if p.changes or p.recipient == bytes(20) or p.amount == 0:
            raise LedgerError(errors.GOV_BAD_PROPOSAL, "a treasury spend names a recipient and an amount > 0")


def parse_value(name: str, text: str) -> int:
    """A parameter value as typed by a person: a plain base-10 integer in the parameter's own unit.

    Every parameter is an unsigned 64-bit integer, so "1.5", "1e3", "true" or "-1" is the wrong type."""
    cleaned = text.strip().replace("_", "")
    if not (cleaned.isascii() and cleaned.isdigit()):
        raise LedgerError(errors.GOV_PARAM_TYPE, f"{name}={text!r}")
    value = int(cleaned)
    if value >= 2**64:
        raise LedgerError(errors.GOV_PARAM_TYPE, f"{name}={text!r} does not fit 64 bits")
    return value


def parse_change(text: str) -> ParamChange:
    """`NAME=VALUE`, as the CLI's --set takes it."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise LedgerError(errors.GOV_BAD_PROPOSAL, f"a change is NAME=VALUE, got {text!r}")
    return ParamChange(name.strip(), parse_value(name.strip(), value))
