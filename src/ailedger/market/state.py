"""Job state: the Job record, its codec, the job id rule and the keys.

Layout (every key under `job/`):
  job/n, job/idx/<u64 i>   -> number of jobs; the i-th job id (posting order)
  job/j/<b32 id>           -> Job
  job/due/<u64 height>     -> job ids (32 bytes each) to look at in that block's end_block
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ailedger.chain.params import Reader
from ailedger.chain.queue import append_item, items
from ailedger.chain.state import Journal
from ailedger.core.address import encode_address
from ailedger.core.encoding import AMOUNT, B20, B32, U8, U64, Record
from ailedger.core.hashing import tagged

_U64 = struct.Struct(">Q")


class Kind:
    TRAIN = 1
    SERVE = 2
    ATTRIBUTION = 3


KIND_NAMES = {1: "train", 2: "serve", 3: "attribution"}


class JobStatus:
    OPEN = 0
    CLAIMED = 1
    SUBMITTED = 2
    PAID = 3
    REFUNDED = 4


STATUS_NAMES = {0: "open", 1: "claimed", 2: "submitted", 3: "paid", 4: "refunded"}
ESCROWED = (JobStatus.OPEN, JobStatus.CLAIMED, JobStatus.SUBMITTED)  # the budget is held by the job


@dataclass
class Job:
    id: bytes
    poster: bytes
    kind: int
    spec_hash: bytes
    budget: int
    deadline: int  # last height at which the job may be claimed and its result submitted
    posted: int
    status: int = JobStatus.OPEN
    worker: bytes = bytes(20)
    result_hash: bytes = bytes(32)
    claimed: int = 0
    delivered: int = 0
    closed: int = 0

    def to_json(self) -> dict[str, Any]:
        has_worker = self.status != JobStatus.OPEN and any(self.worker)
        return {"id": self.id.hex(), "poster": encode_address(self.poster), "kind": KIND_NAMES.get(self.kind),
                "spec_hash": self.spec_hash.hex(), "budget": self.budget, "status": STATUS_NAMES[self.status],
                "deadline": self.deadline, "posted": self.posted,
                "worker": encode_address(self.worker) if has_worker else None,
                "result_hash": self.result_hash.hex() if any(self.result_hash) else None,
                "claimed": self.claimed or None, "delivered": self.delivered or None, "closed": self.closed or None}


JOB = Record(Job, {"id": B32, "poster": B20, "kind": U8, "spec_hash": B32, "budget": AMOUNT, "deadline": U64,
                   "posted": U64, "status": U8, "worker": B20, "result_hash": B32, "claimed": U64,
                   "delivered": U64, "closed": U64})

COUNT_KEY = b"job/n"


def job_id(poster: bytes, nonce: int) -> bytes:
    """tagged("job", poster address || u64 nonce of the post_job transaction): known before inclusion."""
    return tagged(b"job", poster + _U64.pack(nonce))


def job_key(jid: bytes) -> bytes:
    return b"job/j/" + jid


def index_key(i: int) -> bytes:
    return b"job/idx/" + _U64.pack(i)


def due_key(height: int) -> bytes:
    return b"job/due/" + _U64.pack(height)


def get_count(state: Reader) -> int:
    raw = state.get(COUNT_KEY)
    return int(_U64.unpack(raw)[0]) if raw else 0


def get_job(state: Reader, jid: bytes) -> Job | None:
    raw = state.get(job_key(jid))
    return JOB.decode(raw) if raw else None


def put_job(state: Journal, job: Job) -> None:
    state.set(job_key(job.id), JOB.encode(job))


def add_job(state: Journal, job: Job) -> None:
    n = get_count(state)
    put_job(state, job)
    state.set(index_key(n), job.id)
    state.set(COUNT_KEY, _U64.pack(n + 1))


def append_due(state: Journal, height: int, jid: bytes) -> None:
    append_item(state, due_key(height), jid)


def due_ids(state: Reader, height: int) -> list[bytes]:
    return items(state, due_key(height), 32)
