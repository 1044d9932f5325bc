"""What the market and agents pages show: concentration per resource class, orders, leases, providers; agents
with their verified success rate, status and recent tasks.

Reads go through the modules' own read helpers (`market/views.py`, `market/book.py`'s keyed getters,
`agents/views.py`) by id: lists walk ids down from a keyset cursor (`?leases_before=ID`,
`?tasks_before=ID`) or positional indexes up from one (`?providers_after=I`, `?agents_after=I`), so a page
reads one page of rows. Lists filtered by status (open orders, active leases) skip rows of other statuses on
the way and stop after `SCAN` ids, saying so, so a page never walks the whole history.
"""

from __future__ import annotations

from typing import Any

from ailedger.agents import views as agent_views
from ailedger.agents.state import (
    AGENT_COUNT_KEY,
    TASK_COUNT_KEY,
    AgentStatus,
    agent_index_key,
    find_agent,
    find_task,
    get_u32,
)
from ailedger.agents.state import get_u64 as agent_u64
from ailedger.chain import params
from ailedger.market import book, views
from ailedger.market.book import LeaseStatus, OrderStatus
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role
from ailedger.web.chain_pages import PAGE, SERIES, Explorer, parse_cursor

SCAN = 1_000  # ids a status-filtered list walks past at most, per page


def _classes(ex: Explorer, height: int) -> list[dict[str, Any]]:
    """Per class: the concentration now and the top share and HHI carried over the latest SERIES blocks."""
    state = ex.node.state
    start = max(1, height - SERIES + 1)
    out = []
    for cls in views.classes(state):
        rows = {r.height: r for r in views.stat_history(state, cls, start, height)}
        before = [] if start == 1 else views.stat_history(state, cls, max(1, start - SERIES), start - 1)
        last = before[-1] if before else None
        xs, top, hhi = [], [], []
        for h in range(start, height + 1):
            last = rows.get(h, last)
            xs.append(h)
            top.append(last.top_share_bps if last else 0)
            hhi.append(last.hhi if last else 0)
        now = views.share_now(state, cls, height).to_json()
        out.append({"class": cls, "now": now, "series": {"height": xs, "top": top, "hhi": hhi},
                    "max_top_share_bps": max(top, default=0), "changes": len(rows)})
    return out


def _walk_down(top: int, cursor: tuple[int, ...] | None, keep: Any) -> tuple[list[Any], str | None, bool]:
    """Rows for ids from below the cursor down (`keep(id)` returns a row or None), a page of them; the next
    cursor and whether the walk stopped at SCAN ids before finding a page."""
    start = min(top, cursor[0] - 1) if cursor else top
    rows: list[Any] = []
    i = start
    stopped = False
    while i >= 1 and len(rows) < PAGE:
        if start - i >= SCAN:
            stopped = True
            break
        row = keep(i)
        if row is not None:
            rows.append(row)
        i -= 1
    return rows, (str(i + 1) if i >= 1 else None), stopped


def market(ex: Explorer, leases_before: str | None, providers_after: str | None) -> dict[str, Any]:
    lc = parse_cursor(leases_before, 1)
    pc = parse_cursor(providers_after, 1)
    with ex.node.lock:
        state = ex.node.state
        height = ex.node.store.height()
        classes = _classes(ex, height)

        def active(lid: int) -> dict[str, Any] | None:
            lease = views.get_lease(state, lid)
            if lease is None or lease.status != LeaseStatus.ACTIVE:
                return None
            return {**lease.to_json(), "owed": views.owed(lease)}

        leases, lnext, lstopped = _walk_down(book.count(state, b"mkt/ln"), lc, active)

        def bidding(oid: int) -> dict[str, Any] | None:
            o = views.get_order(state, oid)
            return o.to_json() if o is not None and o.status == OrderStatus.BIDDING else None

        orders, _, ostopped = _walk_down(book.count(state, b"mkt/on"), None, bidding)
        n_providers = book.count(state, b"mkt/pn")
        first = pc[0] + 1 if pc else 0
        providers = []
        for i in range(first, min(n_providers, first + PAGE)):
            p = views.get_provider(state, book.provider_at(state, i))
            if p is not None:
                providers.append({**p.to_json(), "index": i, "reputation_bps": reputation.score_bps(
                    state, p.address, Role.COMPUTE_PROVIDER, height)})
        cap = params.get(state, "market_max_operator_share_bps")
        floor = params.get(state, "market_share_floor_units")
    pnext = str(first + PAGE - 1) if first + PAGE < n_providers else None
    return {"height": height, "cap_bps": cap, "floor": floor, "classes": classes, "orders": orders,
            "orders_stopped": ostopped, "leases": leases, "leases_next": lnext if len(leases) == PAGE or lstopped
            else None, "leases_stopped": lstopped, "leases_first": lc is None, "providers": providers,
            "providers_next": pnext, "providers_first": pc is None, "provider_count": n_providers}


def agent_status(doc: dict[str, Any], registered: int) -> str:
    if doc["status"] == "suspended":
        return f"suspended until block {doc['suspended_until']}"
    if doc["status"] == "retired":
        return "retired"
    return f"active since block {registered}"


def agents(ex: Explorer, agents_after: str | None, tasks_before: str | None) -> dict[str, Any]:
    ac = parse_cursor(agents_after, 1)
    tc = parse_cursor(tasks_before, 1)
    with ex.node.lock:
        state = ex.node.state
        height = ex.node.store.height()
        n_agents = get_u32(state, AGENT_COUNT_KEY)
        first = ac[0] + 1 if ac else 0
        rows = []
        for i in range(first, min(n_agents, first + PAGE)):
            a = find_agent(state, (state.get(agent_index_key(i)) or b"").decode())
            if a is None:
                continue
            doc = agent_views.agent_doc(state, a, height)
            doc["index"] = i
            doc["status_words"] = agent_status(doc, a.registered)
            doc["suspended"] = a.status == AgentStatus.SUSPENDED
            rows.append(doc)

        def task(tid: int) -> dict[str, Any] | None:
            t = find_task(state, tid)
            if t is None:
                return None
            doc = agent_views.task_doc(t)
            doc["outcome"] = outcome(doc)
            return doc

        tasks, tnext, _ = _walk_down(agent_u64(state, TASK_COUNT_KEY), tc, task)
    return {"height": height, "agents": rows, "agent_count": n_agents,
            "agents_next": str(first + PAGE - 1) if first + PAGE < n_agents else None, "agents_first": ac is None,
            "tasks": tasks, "tasks_next": tnext if len(tasks) == PAGE else None, "tasks_first": tc is None}


def outcome(t: dict[str, Any]) -> str:
    """A task's verification outcome in words."""
    if t["verdict"] == "passed":
        return "verified: passed"
    if t["verdict"] == "failed":
        return "verified: failed"
    if t["status"] == "open":
        return "waiting for a result"
    if t["status"] == "expired":
        return "expired without a result"
    if t["draw"] == "pending":
        return "result in; verification draw pending"
    if t["draw"] == "verify":
        return "drawn for verification; waiting for the verdict" if t["status"] == "submitted" else \
            "drawn; no verdict in time"
    return "not drawn for verification" + ("; paid unverified" if t["status"] == "paid" else "")
