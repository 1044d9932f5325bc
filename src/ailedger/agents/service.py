"""Agents reads as JSON, for the HTTP API (`/v1/agents/...`, `/v1/tasks/...`) and the embedded CLI.

Plain functions over a state reader and the head height, and `AgentReads`, which runs them under a
node's lock so both backends answer the same bytes (the same split as governance/service.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ailedger.agents import catalog, views
from ailedger.agents.state import AGENT_STATUS_NAMES, TASK_STATUS_NAMES, find_agent
from ailedger.chain.node import Node
from ailedger.chain.params import Reader
from ailedger.core import errors
from ailedger.core.address import decode_address
from ailedger.core.errors import LedgerError

T = TypeVar("T")
MAX_PAGE = 1_000


def _status(names: dict[int, str], status: str | None) -> int | None:
    if status is None:
        return None
    codes = {name: number for number, name in names.items()}
    if status not in codes:
        raise LedgerError(errors.BAD_REQUEST, f"status must be one of {', '.join(codes)}")
    return codes[status]


def agents_json(state: Reader, height: int, task_type: str | None = None,
                status: str | None = None) -> dict[str, Any]:
    items = views.list_agents(state, height, task_type, _status(AGENT_STATUS_NAMES, status))
    return {"height": height, "agents": items, **views.totals_doc(state)}


def agent_json(state: Reader, height: int, name: str) -> dict[str, Any]:
    a = find_agent(state, name)
    if a is None:
        raise LedgerError(errors.AGENT_NOT_FOUND, repr(name))
    return {"height": height, **views.agent_doc(state, a, height)}


def tasks_json(state: Reader, height: int, status: str | None = None, agent: str | None = None, offset: int = 0,
               limit: int = 100) -> dict[str, Any]:
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise LedgerError(errors.BAD_REQUEST, f"offset must be >= 0 and limit within 1..{MAX_PAGE}")
    items, total = views.list_tasks(state, _status(TASK_STATUS_NAMES, status), agent, offset, limit)
    return {"height": height, "tasks": items, "total": total, "offset": offset, "more": offset + len(items) < total}


def task_json(state: Reader, height: int, tid: int) -> dict[str, Any]:
    doc = views.get_task_doc(state, tid)
    if doc is None:
        raise LedgerError(errors.TASK_NOT_FOUND, f"task {tid}")
    return {"height": height, **doc}


def registry_json(state: Reader, height: int, address: str | None = None) -> dict[str, Any]:
    """The registered tools and checkers, and (given an address) whether it is a verifier."""
    doc: dict[str, Any] = {"height": height, "tools": dict(catalog.TOOLS), "checkers": dict(catalog.CHECKERS)}
    if address:
        doc["verifier"] = views.is_verifier(state, decode_address(address))
    return doc


class AgentReads:
    """The reads above over a node's committed state, under its lock."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with self.node.lock:
            return fn(self.node.state, self.node.store.height(), *args)

    def agents(self, task_type: str | None = None, status: str | None = None) -> dict[str, Any]:
        return self._read(agents_json, task_type, status)

    def agent(self, name: str) -> dict[str, Any]:
        return self._read(agent_json, name)

    def tasks(self, status: str | None = None, agent: str | None = None, offset: int = 0,
              limit: int = 100) -> dict[str, Any]:
        return self._read(tasks_json, status, agent, offset, limit)

    def task(self, tid: int) -> dict[str, Any]:
        return self._read(task_json, tid)

    def registry(self, address: str | None = None) -> dict[str, Any]:
        return self._read(registry_json, address)
