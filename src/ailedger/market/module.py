"""The market ledger module (number 4): compute jobs with escrowed budgets.

A poster escrows a budget for a job (train, serve or attribution; the spec is a blob named by its
hash), a worker with enough bonded stake claims it, delivers a result hash before the deadline, and
the poster's acceptance pays the worker the whole budget. Deadlines and silence are settled by
end_block (rules.py). The reverse auction that will price jobs comes later on top of these.

Transactions: 0x0401 post_job, 0x0402 claim_job, 0x0403 submit_result, 0x0404 accept_result.
Docs: docs/models.md.
"""

from __future__ import annotations

from ailedger.chain.module import BlockContext, Module, TxType
from ailedger.chain.params import ParamSpec
from ailedger.chain.state import Journal
from ailedger.core.encoding import MAX_AMOUNT
from ailedger.market import payloads as p
from ailedger.market import rules, txs
from ailedger.market.state import due_ids, due_key, get_job

NUMBER = 4

PARAMS = [
    ParamSpec("market_worker_min_stake", 1_000_000, 0, MAX_AMOUNT, "micro-units",
              "Bonded stake an account needs to claim a job."),
    ParamSpec("market_min_budget", 1_000, 1, MAX_AMOUNT, "micro-units", "Smallest budget a job may escrow."),
    ParamSpec("market_min_deadline_blocks", 1, 1, 10**9, "blocks", "Shortest deadline a job may set.",
              at_most="market_max_deadline_blocks"),
    ParamSpec("market_max_deadline_blocks", 100_000, 1, 10**9, "blocks", "Longest deadline a job may set."),
    ParamSpec("market_review_blocks", 100, 1, 10**9, "blocks",
              "Blocks after the deadline a poster has to accept a delivered result before it is paid anyway."),
    ParamSpec("market_rep_worker_weight", 1_000_000, 0, 10**12, "fixed point (1e6 = one outcome)",
              "Compute-provider reputation a worker gains per paid job and loses per missed deadline."),
]


class MarketModule(Module):
    def __init__(self) -> None:
        super().__init__(
            name="market",
            number=NUMBER,
            tx_types=[
                TxType(p.POST_JOB, "post_job", p.POST_JOB_CODEC, txs.apply_post_job,
                       "Post a job, escrowing its budget from the sender's balance."),
                TxType(p.CLAIM_JOB, "claim_job", p.JOB_REF_CODEC, txs.apply_claim_job,
                       "Claim an open job; needs market_worker_min_stake bonded."),
                TxType(p.SUBMIT_RESULT, "submit_result", p.SUBMIT_RESULT_CODEC, txs.apply_submit_result,
                       "Deliver the result hash of a claimed job before its deadline (claimant only)."),
                TxType(p.ACCEPT_RESULT, "accept_result", p.JOB_REF_CODEC, txs.apply_accept_result,
                       "Accept a delivered result, paying the budget to the worker (poster only)."),
            ],
            params=list(PARAMS),
        )

    def end_block(self, state: Journal, ctx: BlockContext) -> None:
        """Settle every job queued for this height (its deadline or the end of its review window)."""
        ids = due_ids(state, ctx.height)
        if not ids:
            return
        for jid in ids:
            job = get_job(state, jid)
            if job is not None:
                rules.due(state, job, ctx.height)
        state.delete(due_key(ctx.height))
