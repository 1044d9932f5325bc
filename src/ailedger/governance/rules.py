"""The governance rules that move money or parameters: deposits, opening a vote, the fate of deposits,
and execution after the timelock.

Deposit fate (docs/governance.md): a proposal that passes or is rejected with quorum gets its deposits
back, to each depositor what they gave; one that is dropped (deposit period over below the minimum),
misses quorum or is vetoed sends its deposits to the treasury. Nothing is burned outright, so the
supply stays the same and the treasury is funded by proposals that wasted the stakers' attention.
"""

from __future__ import annotations

from ailedger.chain import accounts, params
from ailedger.chain.params import ParamRegistry
from ailedger.chain.state import Journal
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.governance.payloads import Kind, ParamChange
from ailedger.governance.state import (
    HELD_KEY,
    TREASURY_KEY,
    Header,
    Status,
    depositors,
    get_body,
    get_u64,
    put_u64,
    schedule,
)

BPS = 10_000


def check_change(registry: ParamRegistry, c: ParamChange) -> None:
    """A change names a registered parameter and a whole number within its bounds."""
    spec = registry.specs.get(c.name)
    if spec is None:
        raise LedgerError(errors.GOV_UNKNOWN_PARAM, repr(c.name))
    if type(c.value) is not int:
        raise LedgerError(errors.GOV_PARAM_TYPE, f"{c.name}={c.value!r}")
    if not spec.minimum <= c.value <= spec.maximum:
        raise LedgerError(errors.GOV_PARAM_OUT_OF_BOUNDS,
                          f"{c.name}={c.value} outside {spec.minimum}..{spec.maximum} {spec.unit}")


def check_changes(registry: ParamRegistry, state: Journal, changes: list[ParamChange]) -> None:
    """Every change on its own (`check_change`), then all of them together against the values in force:
    no minimum may end above its maximum."""
    for c in changes:
        check_change(registry, c)
    proposed = {c.name: c.value for c in changes}
    violation = registry.order_violation(lambda name: proposed.get(name, params.get(state, name)))
    if violation:
        raise LedgerError(errors.GOV_PARAM_ORDER, violation)


def treasury(state: Journal) -> int:
    return get_u64(state, TREASURY_KEY)


def check_spend(state: Journal, amount: int) -> None:
    held = treasury(state)
    if amount > held:
        raise LedgerError(errors.GOV_TREASURY_INSUFFICIENT, f"treasury {held} < {amount}")


def maybe_open(state: Journal, height: int, pid: int, h: Header) -> None:
    """Open the vote once the deposits reach `gov_min_deposit`; weights are fixed at the block before."""
    if h.status != Status.DEPOSIT or h.deposit < params.get(state, "gov_min_deposit"):
        return
    h.status = Status.VOTING
    h.voting_start = height
    h.voting_end = height + params.get(state, "gov_voting_period_blocks")
    h.total_stake = accounts.total_stake_at(state, height - 1)
    schedule(state, h.voting_end, pid)


def _release(state: Journal, amount: int) -> None:
    put_u64(state, HELD_KEY, get_u64(state, HELD_KEY) - amount)


def refund(state: Journal, pid: int, h: Header) -> None:
    for address, amount in depositors(state, pid):
        accounts.credit(state, address, amount)
    _release(state, h.deposit)


def to_treasury(state: Journal, h: Header) -> None:
    put_u64(state, TREASURY_KEY, treasury(state) + h.deposit)
    _release(state, h.deposit)


def execute(state: Journal, height: int, pid: int, h: Header, registry: ParamRegistry) -> None:
    """Run a passed proposal whose timelock is over; on any failure nothing of it stays and the status
    says failed_execution with the code that stopped it."""
    body = get_body(state, pid)
    mark = state.checkpoint()
    try:
        if h.kind == Kind.PARAM_CHANGE:
            check_changes(registry, state, body.changes)  # all checked before any is applied: all or none
            for c in body.changes:
                registry.set(state, c.name, c.value, height, pid)
        elif h.kind == Kind.TREASURY_SPEND:
            check_spend(state, body.amount)
            put_u64(state, TREASURY_KEY, treasury(state) - body.amount)
            accounts.credit(state, body.recipient, body.amount)
        h.status = Status.EXECUTED
    except LedgerError as exc:
        state.revert(mark)
        h.status, h.error = Status.FAILED_EXECUTION, exc.code.number
    h.execute_at = height
