"""Read helpers over governance state: proposal documents, lists, the treasury and what governance holds."""

from __future__ import annotations

from typing import Any

from ailedger.chain.params import Reader
from ailedger.core.address import encode_address
from ailedger.governance.payloads import KIND_NAMES, OPTION_NAMES, Kind
from ailedger.governance.state import (
    HELD_KEY,
    STATUS_NAMES,
    TREASURY_KEY,
    Header,
    Status,
    depositors,
    find_header,
    get_body,
    get_u64,
    get_vote,
    proposal_count,
)

BPS = 10_000


def holdings(state: Reader) -> int:
    """What governance holds: the treasury plus the deposits on open proposals.

    Part of the total supply (balances + stakes + ... + settlement's holdings + this)."""
    return get_u64(state, TREASURY_KEY) + get_u64(state, HELD_KEY)


def treasury_doc(state: Reader) -> dict[str, int]:
    return {"treasury": get_u64(state, TREASURY_KEY), "deposits_held": get_u64(state, HELD_KEY)}


def _share(part: int, whole: int) -> int | None:
    return part * BPS // whole if whole else None


def tally_doc(h: Header) -> dict[str, Any]:
    voted = h.yes + h.no + h.abstain + h.veto
    return {"yes": h.yes, "no": h.no, "abstain": h.abstain, "veto": h.veto, "voted": voted, "voters": h.voters,
            "total_stake": h.total_stake, "turnout_bps": _share(voted, h.total_stake),
            "yes_bps": _share(h.yes, h.yes + h.no), "veto_bps": _share(h.veto, voted)}


def summary_doc(pid: int, h: Header, title: str) -> dict[str, Any]:
    return {"id": pid, "kind": KIND_NAMES.get(h.kind, str(h.kind)), "status": STATUS_NAMES.get(h.status, str(h.status)),
            "title": title, "proposer": encode_address(h.proposer), "submitted": h.submitted,
            "deposit": h.deposit, "deposit_end": h.deposit_end,
            "voting_start": h.voting_start or None, "voting_end": h.voting_end or None,
            "decided": h.decided or None, "execute_at": h.execute_at or None}


def proposal_doc(state: Reader, pid: int, h: Header, voter: bytes | None = None) -> dict[str, Any]:
    body = get_body(state, pid)
    doc = summary_doc(pid, h, body.title)
    doc["text"] = body.text
    if h.kind == Kind.PARAM_CHANGE:
        doc["changes"] = [{"name": c.name, "value": c.value} for c in body.changes]
    if h.kind == Kind.TREASURY_SPEND:
        doc["spend"] = {"recipient": encode_address(body.recipient), "amount": body.amount}
    doc["tally"] = tally_doc(h)
    doc["deposits"] = [{"address": encode_address(a), "amount": n} for a, n in depositors(state, pid)]
    doc["deposit_fate"] = deposit_fate(h.status)
    doc["execution_error"] = h.error or None
    if voter is not None:
        vote = get_vote(state, pid, voter)
        doc["vote"] = {"address": encode_address(voter), "option": OPTION_NAMES[vote[0]] if vote else None,
                       "weight": vote[1] if vote else 0}
    return doc


def deposit_fate(status: int) -> str:
    if status in (Status.DEPOSIT, Status.VOTING):
        return "held"
    if status in (Status.DROPPED, Status.NO_QUORUM, Status.VETOED):
        return "treasury"
    return "refunded"


def list_proposals(state: Reader, status: int | None, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Proposals newest first (optionally of one status), a page of them, and how many matched in all."""
    out: list[dict[str, Any]] = []
    matched = 0
    for pid in range(proposal_count(state), 0, -1):
        h = find_header(state, pid)
        if h is None or (status is not None and h.status != status):
            continue
        if offset <= matched < offset + limit:
            doc = summary_doc(pid, h, get_body(state, pid).title)
            doc["tally"] = tally_doc(h)
            out.append(doc)
        matched += 1
    return out, matched
