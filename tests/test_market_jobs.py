"""Compute jobs through the state machine: escrow, claim, delivery, payment, deadlines, each error."""

from __future__ import annotations

from typing import Any

import pytest

from ailedger.chain.genesis import Allocation
from ailedger.market import payloads as j
from ailedger.market import views
from ailedger.market.state import Job, JobStatus
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role
from tests.conftest import key
from tests.datanet_sim import FEE, Sim
from tests.models_sim import assert_fails_cleanly, h, total_supply

POSTER, WORKER, LOW, OTHER, POOR = key(21), key(22), key(23), key(24), key(25)
UNIT = 1_000_000
ALLOC = [Allocation(POSTER.address, 100 * UNIT), Allocation(WORKER.address, UNIT, UNIT),
         Allocation(LOW.address, UNIT, UNIT - 1), Allocation(OTHER.address, UNIT, 2 * UNIT),
         Allocation(POOR.address, 5_000)]
PARAMS = {"market_worker_min_stake": UNIT, "market_review_blocks": 3, "market_max_deadline_blocks": 50,
          "market_min_budget": 1_000}
BUDGET = 7_777_777


def post(kind: int = 1, budget: int = BUDGET, deadline: int = 10, spec: bytes | None = None) -> j.PostJob:
    return j.PostJob(kind, h(1) if spec is None else spec, budget, deadline)


def job(sim: Sim, i: int) -> Job:
    return views.list_jobs(sim.state)[i]


def world() -> Sim:
    """J0 open, J1 claimed by WORKER, J2 claimed and delivered; all three posted at height 1, deadline 11."""
    sim = Sim(ALLOC, PARAMS)
    sim.ok(*[(POSTER, j.POST_JOB, post(kind=k)) for k in (1, 2, 3)])
    ids = [x.id for x in views.list_jobs(sim.state)]
    sim.ok((WORKER, j.CLAIM_JOB, j.JobRef(ids[1])), (OTHER, j.CLAIM_JOB, j.JobRef(ids[2])))
    sim.ok((OTHER, j.SUBMIT_RESULT, j.SubmitResult(ids[2], h(9))))
    return sim


@pytest.fixture(scope="module")
def setup() -> Sim:
    return world()


def test_post_escrows_the_budget_under_a_predictable_id(setup: Sim) -> None:
    fresh = Sim(ALLOC, PARAMS)
    assert setup.balance(POSTER) == fresh.balance(POSTER) - 3 * (BUDGET + FEE)
    assert views.escrowed(setup.state) == 3 * BUDGET
    assert total_supply(setup.state) == total_supply(fresh.state)
    jobs = views.list_jobs(setup.state)
    assert [x.id for x in jobs] == [views.job_id(POSTER.address, n) for n in range(3)]
    assert [x.status for x in jobs] == [JobStatus.OPEN, JobStatus.CLAIMED, JobStatus.SUBMITTED]
    assert jobs[0].deadline == 11 and jobs[1].worker == WORKER.address and jobs[2].result_hash == h(9)
    js = jobs[2].to_json()
    assert js["kind"] == "attribution" and js["status"] == "submitted" and js["result_hash"] == h(9).hex()
    assert jobs[0].to_json()["worker"] is None
    assert [x.id for x in views.list_jobs(setup.state, JobStatus.CLAIMED)] == [jobs[1].id]


def test_accept_pays_the_whole_budget_to_the_worker(setup: Sim) -> None:
    sim = setup.copy()
    before = sim.balance(OTHER)
    jid = job(sim, 2).id
    sim.ok((POSTER, j.ACCEPT_RESULT, j.JobRef(jid)))
    assert sim.balance(OTHER) == before + BUDGET
    assert job(sim, 2).status == JobStatus.PAID and job(sim, 2).closed == sim.height
    assert views.escrowed(sim.state) == 2 * BUDGET
    assert reputation.score_bps(sim.state, OTHER.address, Role.COMPUTE_PROVIDER, sim.height) > 5_000
    sim.until(20)  # nothing more happens to a paid job at its deadline or review end
    assert sim.balance(OTHER) == before + BUDGET and job(sim, 2).status == JobStatus.PAID
    assert total_supply(sim.state) == total_supply(Sim(ALLOC, PARAMS).state)


def test_deadline_refunds_open_and_undelivered_jobs_and_silence_pays_delivered_ones(setup: Sim) -> None:
    sim = setup.copy()
    poster, worker, other = sim.balance(POSTER), sim.balance(WORKER), sim.balance(OTHER)
    sim.until(10)
    assert [job(sim, i).status for i in range(3)] == [JobStatus.OPEN, JobStatus.CLAIMED, JobStatus.SUBMITTED]
    sim.until(11)  # the deadline block: open and claimed jobs go back to the poster
    assert [job(sim, i).status for i in range(3)] == [JobStatus.REFUNDED, JobStatus.REFUNDED, JobStatus.SUBMITTED]
    assert sim.balance(POSTER) == poster + 2 * BUDGET and sim.balance(WORKER) == worker
    assert reputation.score_bps(sim.state, WORKER.address, Role.COMPUTE_PROVIDER, sim.height) < 5_000
    sim.until(13)
    assert job(sim, 2).status == JobStatus.SUBMITTED  # the poster may still accept
    sim.until(14)  # deadline + market_review_blocks: paid anyway
    assert job(sim, 2).status == JobStatus.PAID and sim.balance(OTHER) == other + BUDGET
    assert views.escrowed(sim.state) == 0
    assert total_supply(sim.state) == total_supply(Sim(ALLOC, PARAMS).state)


def test_the_deadline_block_itself_still_counts() -> None:
    sim = Sim(ALLOC, PARAMS)
    sim.ok((POSTER, j.POST_JOB, post(deadline=2)))
    jid = job(sim, 0).id
    sim.ok((WORKER, j.CLAIM_JOB, j.JobRef(jid)))
    sim.ok((WORKER, j.SUBMIT_RESULT, j.SubmitResult(jid, h(5))))  # height 3 = deadline
    assert job(sim, 0).status == JobStatus.SUBMITTED and job(sim, 0).delivered == 3
    sim.ok((POSTER, j.ACCEPT_RESULT, j.JobRef(jid)))  # inside the review window
    assert job(sim, 0).status == JobStatus.PAID


BAD: list[tuple[str, Any, int, Any]] = [
    ("bad_job_param", POSTER, j.POST_JOB, post(kind=0)),
    ("bad_job_param", POSTER, j.POST_JOB, post(kind=4)),
    ("bad_job_param", POSTER, j.POST_JOB, post(spec=bytes(32))),
    ("bad_job_param", POSTER, j.POST_JOB, post(budget=999)),
    ("bad_job_param", POSTER, j.POST_JOB, post(deadline=0)),
    ("bad_job_param", POSTER, j.POST_JOB, post(deadline=51)),
    ("insufficient_balance", POOR, j.POST_JOB, post(budget=4_001)),
    ("job_not_found", WORKER, j.CLAIM_JOB, j.JobRef(h(3))),
    ("job_not_open", OTHER, j.CLAIM_JOB, "J1"),
    ("own_job", POSTER, j.CLAIM_JOB, "J0"),
    ("worker_stake_too_low", LOW, j.CLAIM_JOB, "J0"),
    ("job_not_found", WORKER, j.SUBMIT_RESULT, j.SubmitResult(h(3), h(4))),
    ("not_job_claimant", OTHER, j.SUBMIT_RESULT, ("J1", h(4))),
    ("not_job_claimant", WORKER, j.SUBMIT_RESULT, ("J0", h(4))),
    ("job_not_open", OTHER, j.SUBMIT_RESULT, ("J2", h(4))),
    ("bad_job_param", WORKER, j.SUBMIT_RESULT, ("J1", bytes(32))),
    ("job_not_found", POSTER, j.ACCEPT_RESULT, j.JobRef(h(3))),
    ("not_job_poster", OTHER, j.ACCEPT_RESULT, "J2"),
    ("job_not_open", POSTER, j.ACCEPT_RESULT, "J1"),
    ("job_not_open", POSTER, j.ACCEPT_RESULT, "J0"),
]


def _payload(sim: Sim, tx_type: int, payload: Any) -> Any:
    """'Jn' names the n-th job of the world; ('Jn', hash) a result for it."""
    if isinstance(payload, str):
        return j.JobRef(job(sim, int(payload[1])).id)
    if isinstance(payload, tuple):
        return j.SubmitResult(job(sim, int(payload[0][1])).id, payload[1])
    return payload


@pytest.mark.parametrize(("code", "sender", "tx_type", "payload"), BAD, ids=[f"{i}-{b[0]}" for i, b in enumerate(BAD)])
def test_each_error_leaves_state_as_it_was_but_the_fee(setup: Sim, code: str, sender: Any, tx_type: int,
                                                        payload: Any) -> None:
    sim = setup.copy()
    assert_fails_cleanly(sim, sender, tx_type, _payload(sim, tx_type, payload), code)


def test_after_the_deadline_claims_and_results_are_refused(setup: Sim) -> None:
    sim = setup.copy()
    sim.until(11)
    assert_fails_cleanly(sim.copy(), WORKER, j.CLAIM_JOB, j.JobRef(job(sim, 0).id), "job_deadline_passed")
    assert_fails_cleanly(sim.copy(), WORKER, j.SUBMIT_RESULT, j.SubmitResult(job(sim, 1).id, h(4)),
                              "job_deadline_passed")
    assert_fails_cleanly(sim.copy(), POSTER, j.ACCEPT_RESULT, j.JobRef(job(sim, 1).id), "job_not_open")
