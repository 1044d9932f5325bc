"""Read helpers over job state (CLI, API and explorer read jobs through these)."""

from __future__ import annotations

from ailedger.chain.params import Reader
from ailedger.market.state import ESCROWED, Job, get_count, get_job, index_key, job_id

__all__ = ["escrowed", "get_job", "job_id", "list_jobs"]


def list_jobs(state: Reader, status: int | None = None) -> list[Job]:
    """Jobs in posting order, optionally only those with `status`."""
    out = []
    for i in range(get_count(state)):
        job = get_job(state, state.get(index_key(i)) or b"")
        if job is not None and (status is None or job.status == status):
            out.append(job)
    return out


def escrowed(state: Reader) -> int:
    """The budgets jobs hold now (open, claimed or submitted): part of the total supply."""
    return sum(j.budget for j in list_jobs(state) if j.status in ESCROWED)
