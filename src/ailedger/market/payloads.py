"""The wire format of the job transactions: type ids, payload records and their canonical codecs."""

from __future__ import annotations

from dataclasses import dataclass

from ailedger.core.encoding import AMOUNT, B32, U8, U32, Record

POST_JOB, CLAIM_JOB, SUBMIT_RESULT, ACCEPT_RESULT = range(0x0401, 0x0405)


@dataclass(frozen=True)
class PostJob:
    kind: int
    spec_hash: bytes
    budget: int
    deadline_blocks: int


@dataclass(frozen=True)
class JobRef:
    job_id: bytes


@dataclass(frozen=True)
class SubmitResult:
    job_id: bytes
    result_hash: bytes


POST_JOB_CODEC = Record(PostJob, {"kind": U8, "spec_hash": B32, "budget": AMOUNT, "deadline_blocks": U32})
JOB_REF_CODEC = Record(JobRef, {"job_id": B32})
SUBMIT_RESULT_CODEC = Record(SubmitResult, {"job_id": B32, "result_hash": B32})
