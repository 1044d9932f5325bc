"""Governance state: proposals (a fixed-size header and a body), deposits, votes, the event queue, the treasury.

Layout (every key under `gov/`):
  gov/n                      -> u64 number of proposals (ids run 1..n)
  gov/p/<u64 id>             -> Header: kind, status, proposer, heights, deposit, stake at open, tally
  gov/b/<u64 id>             -> Body: title, text, changes, spend recipient and amount
  gov/d/<u64 id><b20 addr>   -> u64 what that address deposited on the proposal
  gov/dn/<u64 id>            -> u32 number of depositors; gov/di/<u64 id><u32 i> -> b20 the i-th one
  gov/v/<u64 id><b20 addr>   -> u8 option | u64 weight: the address's vote (a later vote replaces it)
  gov/q/<u64 height>         -> repeated u64 id: proposals with a lifecycle step due at the end of that block
  gov/treasury               -> u64 micro-units the treasury holds
  gov/held                   -> u64 micro-units of deposits held on open proposals

Why a header apart from the body: a vote reads and rewrites only the 124-byte header (its running
tally included), never the proposal's text, so a vote costs the same whatever the proposal says.
Why a running tally: the end of a voting period then decides from one read, however many voted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ailedger.chain.params import Reader
from ailedger.chain.state import Journal
from ailedger.core import errors
from ailedger.core.encoding import AMOUNT, B20, ListOf, Record, Text
from ailedger.core.errors import LedgerError
from ailedger.governance.payloads import MAX_CHANGES, MAX_TEXT, MAX_TITLE, PARAM_CHANGE_CODEC, ParamChange

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_VOTE = struct.Struct(">BQ")
_HEADER = struct.Struct(">BB20sQQQQQQQQQQIQQH")


class Status:
    DEPOSIT = 1  # collecting deposits until `gov_min_deposit` or the deposit period's end
    VOTING = 2  # open for votes until voting_end
    PASSED = 3  # passed; waits for the timelock, then executes
    EXECUTED = 4
    FAILED_EXECUTION = 5  # passed, but a change broke a bound (or the treasury fell short) at execution
    REJECTED = 6  # quorum met, not enough yes: deposits refunded
    NO_QUORUM = 7  # too little stake voted: deposits to the treasury
    VETOED = 8  # the veto share was reached: deposits to the treasury
    DROPPED = 9  # the deposit period ended below `gov_min_deposit`: deposits to the treasury


STATUS_NAMES = {1: "deposit", 2: "voting", 3: "passed", 4: "executed", 5: "failed_execution", 6: "rejected",
                7: "no_quorum", 8: "vetoed", 9: "dropped"}


@dataclass
class Header:
    kind: int
    status: int
    proposer: bytes
    submitted: int  # height of the block that carried the proposal
    deposit_end: int  # last block of the deposit period
    deposit: int  # total deposited so far (held, refunded or sent to the treasury: see `status`)
    voting_start: int = 0  # block in which voting opened; votes weigh stake at the end of the block before
    voting_end: int = 0  # last block in which a vote counts; the tally runs at its end
    total_stake: int = 0  # total bonded stake at the end of voting_start - 1: the quorum's base
    yes: int = 0
    no: int = 0
    abstain: int = 0
    veto: int = 0
    voters: int = 0
    decided: int = 0  # height whose end_block decided the outcome (dropped, tallied)
    execute_at: int = 0  # PASSED: the block whose end executes it; then the block that did
    error: int = 0  # FAILED_EXECUTION: the error code number that stopped it


def encode_header(h: Header) -> bytes:
    return _HEADER.pack(h.kind, h.status, h.proposer, h.submitted, h.deposit_end, h.deposit, h.voting_start,
                        h.voting_end, h.total_stake, h.yes, h.no, h.abstain, h.veto, h.voters, h.decided,
                        h.execute_at, h.error)


def decode_header(raw: bytes) -> Header:
    return Header(*_HEADER.unpack(raw))


@dataclass(frozen=True)
class Body:
    title: str
    text: str
    changes: list[ParamChange] = field(default_factory=list)
    recipient: bytes = bytes(20)
    amount: int = 0


BODY = Record(Body, {"title": Text(MAX_TITLE), "text": Text(MAX_TEXT),
                     "changes": ListOf(PARAM_CHANGE_CODEC, MAX_CHANGES), "recipient": B20, "amount": AMOUNT})

# -- keys -----------------------------------------------------------------------------------------

COUNT_KEY = b"gov/n"
TREASURY_KEY = b"gov/treasury"
HELD_KEY = b"gov/held"


def header_key(pid: int) -> bytes:
    return b"gov/p/" + _U64.pack(pid)


def body_key(pid: int) -> bytes:
    return b"gov/b/" + _U64.pack(pid)


def deposit_key(pid: int, address: bytes) -> bytes:
    return b"gov/d/" + _U64.pack(pid) + address


def depositor_count_key(pid: int) -> bytes:
    return b"gov/dn/" + _U64.pack(pid)


def depositor_key(pid: int, i: int) -> bytes:
    return b"gov/di/" + _U64.pack(pid) + _U32.pack(i)


def vote_key(pid: int, address: bytes) -> bytes:
    return b"gov/v/" + _U64.pack(pid) + address


def queue_key(height: int) -> bytes:
    return b"gov/q/" + _U64.pack(height)


# -- typed get/put --------------------------------------------------------------------------------

def get_u64(state: Reader, key: bytes) -> int:
    raw = state.get(key)
    return int(_U64.unpack(raw)[0]) if raw else 0


def put_u64(state: Journal, key: bytes, value: int) -> None:
    state.set(key, _U64.pack(value))


def proposal_count(state: Reader) -> int:
    return get_u64(state, COUNT_KEY)


def find_header(state: Reader, pid: int) -> Header | None:
    raw = state.get(header_key(pid))
    return decode_header(raw) if raw else None


def get_header(state: Reader, pid: int) -> Header:
    h = find_header(state, pid)
    if h is None:
        raise LedgerError(errors.GOV_PROPOSAL_NOT_FOUND, f"proposal {pid}")
    return h


def put_header(state: Journal, pid: int, h: Header) -> None:
    state.set(header_key(pid), encode_header(h))


def get_body(state: Reader, pid: int) -> Body:
    raw = state.get(body_key(pid))
    if raw is None:
        raise LedgerError(errors.GOV_PROPOSAL_NOT_FOUND, f"proposal {pid}")
    return BODY.decode(raw)


def get_vote(state: Reader, pid: int, address: bytes) -> tuple[int, int] | None:
    """(option, weight) of the address's vote, or None."""
    raw = state.get(vote_key(pid, address))
    if not raw:
        return None
    option, weight = _VOTE.unpack(raw)
    return int(option), int(weight)


def put_vote(state: Journal, pid: int, address: bytes, option: int, weight: int) -> None:
    state.set(vote_key(pid, address), _VOTE.pack(option, weight))


def depositors(state: Reader, pid: int) -> list[tuple[bytes, int]]:
    """(address, amount) of every depositor of a proposal, in first-deposit order."""
    n = _count(state, depositor_count_key(pid))
    out = []
    for i in range(n):
        address = state.get(depositor_key(pid, i)) or b""
        out.append((address, get_u64(state, deposit_key(pid, address))))
    return out


def _count(state: Reader, key: bytes) -> int:
    raw = state.get(key)
    return int(_U32.unpack(raw)[0]) if raw else 0


def add_deposit(state: Journal, pid: int, address: bytes, amount: int) -> None:
    """Record `amount` more from `address`, listing the address the first time it deposits."""
    key = deposit_key(pid, address)
    before = get_u64(state, key)
    if before == 0:
        n = _count(state, depositor_count_key(pid))
        state.set(depositor_key(pid, n), address)
        state.set(depositor_count_key(pid), _U32.pack(n + 1))
    put_u64(state, key, before + amount)
    put_u64(state, HELD_KEY, get_u64(state, HELD_KEY) + amount)


def schedule(state: Journal, height: int, pid: int) -> None:
    key = queue_key(height)
    state.set(key, (state.get(key) or b"") + _U64.pack(pid))


def due(state: Reader, height: int) -> list[int]:
    raw = state.get(queue_key(height)) or b""
    return [int(_U64.unpack_from(raw, i)[0]) for i in range(0, len(raw), 8)]
