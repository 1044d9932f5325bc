"""What governance does at the end of each block: drop, tally or execute the proposals due now.

Every proposal is queued (gov/q/<height>) at each height where its next step may fall: the end of
its deposit period, the end of its voting period, the end of its timelock. A queued step whose
proposal has moved on (say, its deposit period ended early because voting opened) is skipped, so
the hook costs one read per block when nothing is due.
"""

from __future__ import annotations

from ailedger.chain import params
from ailedger.chain.params import ParamRegistry
from ailedger.chain.state import Journal
from ailedger.governance import rules
from ailedger.governance.state import Header, Status, due, get_header, put_header, queue_key, schedule
from ailedger.governance.tally import Rules, outcome


def end_block(state: Journal, height: int, registry: ParamRegistry) -> None:
    ids = due(state, height)
    if not ids:
        return
    for pid in dict.fromkeys(ids):  # a proposal may be queued twice for one height; its order is kept
        h = get_header(state, pid)
        if h.status == Status.DEPOSIT and h.deposit_end == height:
            h.status, h.decided = Status.DROPPED, height
            rules.to_treasury(state, h)
        elif h.status == Status.VOTING and h.voting_end == height:
            tally(state, height, pid, h)
        elif h.status == Status.PASSED and h.execute_at == height:
            rules.execute(state, height, pid, h, registry)
        else:
            continue
        put_header(state, pid, h)
    state.delete(queue_key(height))


def current_rules(state: Journal) -> Rules:
    return Rules(params.get(state, "gov_quorum_bps"), params.get(state, "gov_threshold_bps"),
                 params.get(state, "gov_veto_bps"))


def tally(state: Journal, height: int, pid: int, h: Header) -> None:
    """Decide a vote whose period ends now (tally.py's rule) and settle its deposits."""
    h.status, h.decided = outcome(h.total_stake, h.yes, h.no, h.abstain, h.veto, current_rules(state)), height
    if h.status in (Status.PASSED, Status.REJECTED):
        rules.refund(state, pid, h)
    else:
        rules.to_treasury(state, h)
    if h.status == Status.PASSED:
        h.execute_at = height + params.get(state, "gov_timelock_blocks")
        schedule(state, h.execute_at, pid)
