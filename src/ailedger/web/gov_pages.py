"""What the governance pages show: proposals with their tallies, one proposal, parameters and their history.

Every read goes through governance's views (`governance/views.py`) and the parameter registry's
indexed history (`chain/params.py`): a proposal is two keyed reads (header, body), a list page walks
proposal ids down from a keyset cursor (`?before=ID`), and a parameter's history is its own indexed
list of changes, so no page scans the state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ailedger.chain import params
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.governance import views
from ailedger.governance.state import Header, Status, find_header, get_body, get_header, proposal_count
from ailedger.web.chain_pages import PAGE, Explorer, parse_cursor

BPS = 10_000
HISTORY_PAGE = 100
_PROPOSAL = re.compile(r"(?:p|proposal\s*#?\s*)(\d{1,18})", re.IGNORECASE)

OUTCOME_WORDS = {
    "deposit": "collecting deposits", "voting": "voting open", "passed": "passed; waiting for the timelock",
    "executed": "passed and executed", "failed_execution": "passed, but execution failed",
    "rejected": "rejected: not enough yes", "no_quorum": "failed: too little stake voted",
    "vetoed": "vetoed", "dropped": "dropped: the deposit stayed below the minimum",
}
FATE_WORDS = {"held": "held by governance while the proposal is open",
              "treasury": "sent to the treasury", "refunded": "refunded to the depositors"}


def _pct(bps: int | None) -> str:
    return "—" if bps is None else f"{bps / 100:.2f}%"


def verdict(state: params.Reader, h: Header) -> list[str]:
    """The tally rule applied to the running tally, in words (governance/tally.py's three tests)."""
    if h.status in (Status.DEPOSIT, Status.DROPPED):
        return ["not put to a vote"]
    quorum, threshold, veto = (params.get(state, n) for n in ("gov_quorum_bps", "gov_threshold_bps", "gov_veto_bps"))
    voted = h.yes + h.no + h.abstain + h.veto
    met = h.total_stake > 0 and voted * BPS >= quorum * h.total_stake
    turnout = voted * BPS // h.total_stake if h.total_stake else None
    out = [f"quorum {'met' if met else 'not met'}: {_pct(turnout)} of bonded stake voted "
           f"(needs {_pct(quorum)})"]
    vetoed = voted > 0 and h.veto * BPS > veto * voted
    out.append(f"veto {'reached' if vetoed else 'not reached'}: {_pct(h.veto * BPS // voted if voted else None)} "
               f"of votes (limit {_pct(veto)})")
    decided = h.yes + h.no
    passed = h.yes * BPS > threshold * decided
    out.append(f"threshold {'met' if passed else 'not met'}: {_pct(h.yes * BPS // decided if decided else None)} "
               f"yes of yes + no (needs more than {_pct(threshold)})")
    return out


def _row(ex: Explorer, pid: int, h: Header) -> dict[str, Any]:
    state = ex.node.state
    doc = views.summary_doc(pid, h, get_body(state, pid).title)
    doc["tally"] = views.tally_doc(h)
    doc["outcome"] = OUTCOME_WORDS.get(doc["status"], doc["status"])
    doc["fate"] = FATE_WORDS[views.deposit_fate(h.status)]
    doc["verdict"] = verdict(state, h)
    return doc


def proposals(ex: Explorer, before: str | None) -> dict[str, Any]:
    """Proposals newest first, a page below the cursor (ids are dense, so walking them down is keyed)."""
    cursor = parse_cursor(before, 1)
    with ex.node.lock:
        state = ex.node.state
        n = proposal_count(state)
        top = min(n, cursor[0] - 1) if cursor else n
        rows = []
        for pid in range(top, max(top - PAGE, 0), -1):
            h = find_header(state, pid)
            if h is not None:
                rows.append(_row(ex, pid, h))
        treasury = views.treasury_doc(state)
    more = bool(rows) and rows[-1]["id"] > 1
    return {"proposals": rows, "count": n, "treasury": treasury,
            "next": str(rows[-1]["id"]) if more else None, "first": cursor is None}


def proposal(ex: Explorer, pid: int) -> dict[str, Any]:
    with ex.node.lock:
        state = ex.node.state
        h = get_header(state, pid)
        doc = views.proposal_doc(state, pid, h)
        doc.update(_row(ex, pid, h))
    specs = ex.node.runtime.params.specs
    for c in doc.get("changes", []):
        c["unit"] = specs[c["name"]].unit if c["name"] in specs else ""
    t = doc["tally"]
    voted = t["voted"]
    doc["bars"] = [{"option": o, "stake": t[o], "bps": t[o] * BPS // voted if voted else 0}
                   for o in ("yes", "no", "abstain", "veto")]
    return {"p": doc}


def param_list(ex: Explorer) -> dict[str, Any]:
    registry = ex.node.runtime.params
    with ex.node.lock:
        rows = [{"name": name, **registry.doc(ex.node.state, name)} for name in sorted(registry.specs)]
    return {"params": rows}


def param(ex: Explorer, name: str, after: str | None) -> dict[str, Any]:
    """One parameter, its changes (oldest first, a page of them from `?after=I`) and the step chart's points."""
    registry = ex.node.runtime.params
    if name not in registry.specs:
        raise LedgerError(errors.NOT_FOUND, f"no parameter is called {name[:80]!r}")
    cursor = parse_cursor(after, 1)
    offset = cursor[0] + 1 if cursor else 0
    with ex.node.lock:
        doc = registry.history_doc(ex.node.state, name, offset, HISTORY_PAGE)
        height = ex.node.store.height()
        # the chart: the value from genesis, one step per change, carried to the head (the first page's changes)
        chart = registry.history_doc(ex.node.state, name, 0, HISTORY_PAGE)["history"]
    first = chart[0]["old"] if chart else doc["value"]
    xs, ys = [0], [first]
    for c in chart:
        xs += [c["height"], c["height"]]
        ys += [ys[-1], c["new"]]
    if xs[-1] < height:
        xs.append(height)
        ys.append(ys[-1])
    more = doc["more"]
    return {"pname": name, "param": doc, "changes": [{"index": offset + i, **c} for i, c in enumerate(doc["history"])],
            "series": {"height": xs, "value": ys},
            "next": str(offset + len(doc["history"]) - 1) if more else None, "first": cursor is None}


def search(query: str, names: Mapping[str, object], count: int) -> str | None:
    """A proposal (`p12`, `proposal 12`) or a parameter's name, else None."""
    m = _PROPOSAL.fullmatch(query)
    if m:
        pid = int(m.group(1))
        if 1 <= pid <= count:
            return f"/governance/proposals/{pid}"
    if query in names:
        return f"/params/{query}"
    return None
