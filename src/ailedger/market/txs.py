"""The handlers of the job transactions (their wire format is in payloads.py).

Each handler checks everything before its first write. The budget moves from the poster's balance
into the job at post_job and leaves it exactly once (rules.py), so the total supply is conserved.
"""

from __future__ import annotations

from ailedger.chain import accounts, params
from ailedger.chain.module import BlockContext
from ailedger.chain.state import Journal
from ailedger.chain.tx import Tx
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.market import rules
from ailedger.market.payloads import JobRef, PostJob, SubmitResult
from ailedger.market.state import (
    KIND_NAMES,
    STATUS_NAMES,
    Job,
    JobStatus,
    add_job,
    append_due,
    get_job,
    job_id,
    put_job,
)


def _bad(detail: str) -> LedgerError:
    return LedgerError(errors.BAD_JOB_PARAM, detail)


def _job(state: Journal, jid: bytes) -> Job:
    job = get_job(state, jid)
    if job is None:
        raise LedgerError(errors.JOB_NOT_FOUND, jid.hex())
    return job


def _in_state(job: Job, status: int) -> None:
    if job.status != status:
        raise LedgerError(errors.JOB_NOT_OPEN, f"job is {STATUS_NAMES[job.status]}, needs {STATUS_NAMES[status]}")


def _before_deadline(job: Job, height: int) -> None:
    if height > job.deadline:
        raise LedgerError(errors.JOB_DEADLINE_PASSED, f"deadline was height {job.deadline}")


def apply_post_job(state: Journal, ctx: BlockContext, tx: Tx, p: PostJob) -> None:
    if p.kind not in KIND_NAMES:
        raise _bad(f"kind {p.kind}; 1 train, 2 serve, 3 attribution")
    if not any(p.spec_hash):
        raise _bad("spec_hash is all zeros; send the sha256 of the job spec blob")
    lo = params.get(state, "market_min_budget")
    if p.budget < max(lo, 1):
        raise _bad(f"budget {p.budget} < market_min_budget {lo} (and at least 1)")
    lo, hi = params.get(state, "market_min_deadline_blocks"), params.get(state, "market_max_deadline_blocks")
    if not lo <= p.deadline_blocks <= hi:
        raise _bad(f"deadline_blocks {p.deadline_blocks} outside market_min/max_deadline_blocks {lo}..{hi}")
    poster = tx.sender_address
    accounts.debit(state, poster, p.budget)
    job = Job(job_id(poster, tx.nonce), poster, p.kind, p.spec_hash, p.budget, ctx.height + p.deadline_blocks,
              ctx.height)
    add_job(state, job)
    append_due(state, job.deadline, job.id)


def apply_claim_job(state: Journal, ctx: BlockContext, tx: Tx, p: JobRef) -> None:
    job = _job(state, p.job_id)
    _before_deadline(job, ctx.height)
    _in_state(job, JobStatus.OPEN)
    worker = tx.sender_address
    if worker == job.poster:
        raise LedgerError(errors.OWN_JOB)
    stake = accounts.get_account(state, worker).stake
    minimum = params.get(state, "market_worker_min_stake")
    if stake < minimum:
        raise LedgerError(errors.WORKER_STAKE_TOO_LOW, f"bonded {stake} < market_worker_min_stake {minimum}")
    job.status, job.worker, job.claimed = JobStatus.CLAIMED, worker, ctx.height
    put_job(state, job)


def apply_submit_result(state: Journal, ctx: BlockContext, tx: Tx, p: SubmitResult) -> None:
    job = _job(state, p.job_id)
    if job.status == JobStatus.OPEN or tx.sender_address != job.worker:
        raise LedgerError(errors.NOT_JOB_CLAIMANT)
    _before_deadline(job, ctx.height)
    _in_state(job, JobStatus.CLAIMED)
    if not any(p.result_hash):
        raise _bad("result_hash is all zeros; send the sha256 of the result blob")
    job.status, job.result_hash, job.delivered = JobStatus.SUBMITTED, p.result_hash, ctx.height
    put_job(state, job)


def apply_accept_result(state: Journal, ctx: BlockContext, tx: Tx, p: JobRef) -> None:
    job = _job(state, p.job_id)
    if tx.sender_address != job.poster:
        raise LedgerError(errors.NOT_JOB_POSTER)
    _in_state(job, JobStatus.SUBMITTED)
    rules.pay_worker(state, job, ctx.height)
