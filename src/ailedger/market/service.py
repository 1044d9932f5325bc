"""Compute job reads as JSON, for the HTTP API (`/v1/jobs`) and the embedded CLI alike.

The same split as `models/service.py`: plain functions over a state reader and the head height,
and `JobReads`, which runs them under a node's lock so that both backends answer the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ailedger.chain.node import Node
from ailedger.chain.params import Reader
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.hexid import parse_hex32
from ailedger.market import views
from ailedger.market.state import STATUS_NAMES

T = TypeVar("T")
STATUS_BY_NAME = {v: k for k, v in STATUS_NAMES.items()}


def parse_job_id(text: str) -> bytes:
    """A job id as 64 hex digits (any case), else bad_job_id."""
    return parse_hex32(text, errors.BAD_JOB_ID)


def jobs_json(state: Reader, height: int, status: str | None = None) -> dict[str, Any]:
    """Jobs in posting order, optionally only those in `status` (open, claimed, submitted, paid, refunded)."""
    code = None
    if status is not None:
        if status not in STATUS_BY_NAME:
            raise LedgerError(errors.BAD_REQUEST, f"status {status!r}: use one of {', '.join(STATUS_BY_NAME)}")
        code = STATUS_BY_NAME[status]
    return {"height": height, "status": status, "jobs": [j.to_json() for j in views.list_jobs(state, code)]}


def job_json(state: Reader, height: int, id_hex: str) -> dict[str, Any]:
    job = views.get_job(state, parse_job_id(id_hex))
    if job is None:
        raise LedgerError(errors.JOB_NOT_FOUND, id_hex)
    return {**job.to_json(), "height": height}


class JobReads:
    """The reads above over a node's committed state, under its lock."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with self.node.lock:
            return fn(self.node.state, self.node.store.height(), *args)

    def jobs(self, status: str | None = None) -> dict[str, Any]:
        return self._read(jobs_json, status)

    def job(self, id_hex: str) -> dict[str, Any]:
        return self._read(job_json, id_hex)
