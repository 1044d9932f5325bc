"""How a job's escrow leaves it: paid to the worker, or refunded to the poster.

At the end of block `deadline` (after that block's transactions, so a claim or a result in that
block still counts):
* open (nobody claimed it)       -> refunded to the poster;
* claimed, no result             -> refunded to the poster, and the worker loses compute-provider
                                    reputation (`market_rep_worker_weight`): a missed deadline;
* submitted, not yet accepted    -> the poster gets `market_review_blocks` more blocks to accept;
                                    at the end of block deadline + market_review_blocks a result
                                    still unaccepted is paid to the worker (silence accepts), so a
                                    poster can never hold a delivered job's budget hostage.
Paying the worker (by accept_result or by silence) raises its compute-provider reputation. The whole
budget moves in one piece, so nothing is split and nothing rounds.
"""

from __future__ import annotations

from ailedger.chain import accounts, params
from ailedger.chain.state import Journal
from ailedger.market.state import Job, JobStatus, append_due, put_job
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role


def pay_worker(state: Journal, job: Job, height: int) -> None:
    accounts.credit(state, job.worker, job.budget)
    job.status, job.closed = JobStatus.PAID, height
    put_job(state, job)
    reputation.record_outcome(state, job.worker, Role.COMPUTE_PROVIDER, True, height,
                              params.get(state, "market_rep_worker_weight"))


def refund(state: Journal, job: Job, height: int) -> None:
    accounts.credit(state, job.poster, job.budget)
    missed = job.status == JobStatus.CLAIMED
    job.status, job.closed = JobStatus.REFUNDED, height
    put_job(state, job)
    if missed:
        reputation.record_outcome(state, job.worker, Role.COMPUTE_PROVIDER, False, height,
                                  params.get(state, "market_rep_worker_weight"))


def due(state: Journal, job: Job, height: int) -> None:
    """The job was queued for this height: its deadline, or the end of its review window."""
    if job.status in (JobStatus.OPEN, JobStatus.CLAIMED):
        refund(state, job, height)
    elif job.status == JobStatus.SUBMITTED:
        if height == job.deadline:
            append_due(state, height + params.get(state, "market_review_blocks"), job.id)
        else:
            pay_worker(state, job, height)
