"""The market ledger module (number 4): compute jobs, and the reverse-auction compute market.

A poster escrows a budget for a job (train, serve or attribution; the spec is a blob named by its
hash), a worker with enough bonded stake claims it, delivers a result hash before the deadline, and
the poster's acceptance pays the worker the whole budget. Deadlines and silence are settled by
end_block (rules.py). Docs: docs/models.md "Jobs".

The market beside them (0x0405..0x0410, docs/market.md): bonded providers post offers; an order escrows
a budget and takes bids for a window; end_block closes it to the lowest valid bid the concentration cap
allows (auction.py), runs its lease's timeouts and end (leases.py), draws spot checks (checks.py) and
records each resource class's concentration (concentration.py).
"""

from __future__ import annotations

from ailedger.chain import params
from ailedger.chain.module import BlockContext, Module, TxType
from ailedger.chain.params import ParamSpec
from ailedger.chain.state import Journal
from ailedger.core.encoding import MAX_AMOUNT
from ailedger.market import auction, checks, concentration, leases, rules, trade, txs
from ailedger.market import payloads as p
from ailedger.market.book import CheckStatus, LeaseStatus, OrderStatus, dequeue, get_check, get_lease, get_order
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
    ParamSpec("market_provider_min_stake", 1_000_000, 1, MAX_AMOUNT, "micro-units",
              "Market bond a provider needs to bid and to be drawn as a verifier."),
    ParamSpec("market_cost_floor_per_block", 1, 1, MAX_AMOUNT, "micro-units",
              "Lowest price per block a bid may ask (a floor against dumping to win leases and skip the work)."),
    ParamSpec("market_cost_floor_per_ktokens", 1, 1, MAX_AMOUNT, "micro-units",
              "Lowest price per 1,000 served tokens a bid may ask."),
    ParamSpec("market_min_window_blocks", 1, 1, 10**9, "blocks", "Shortest bid window an order may set.",
              at_most="market_max_window_blocks"),
    ParamSpec("market_max_window_blocks", 1_000, 1, 10**9, "blocks", "Longest bid window an order may set."),
    ParamSpec("market_max_duration_blocks", 1_000_000, 1, 10**9, "blocks", "Longest lease an order may ask for."),
    ParamSpec("market_report_timeout_blocks", 20, 1, 10**9, "blocks",
              "Blocks without a work report after which a lease fails: its provider is slashed, the order reopens."),
    ParamSpec("market_slash_bps", 1_000, 0, 10_000, "basis points",
              "Share of a provider's market bond taken (and given to the consumer) when its lease fails."),
    ParamSpec("market_max_operator_share_bps", 2_500, 1, 10_000, "basis points",
              "Most of a resource class's active leased capacity one operator may hold at any block "
              "(a lease opens only if its operator stays within it until the lease's scheduled end)."),
    ParamSpec("market_share_floor_units", 16, 1, 10**12, "units",
              "Least capacity a class's shares are measured against (so the first leases of a thin market open)."),
    ParamSpec("market_check_min_bps", 200, 0, 10_000, "basis points",
              "Spot-check rate of a report from a provider of perfect reputation.", at_most="market_check_max_bps"),
    ParamSpec("market_check_max_bps", 5_000, 0, 10_000, "basis points",
              "Spot-check rate of a report from a provider of zero reputation."),
    ParamSpec("market_check_timeout_blocks", 20, 1, 10**9, "blocks", "Blocks a drawn verifier has to answer."),
    ParamSpec("market_check_miss_bps", 100, 0, 10_000, "basis points",
              "Share of a verifier's bond taken (and given to the consumer) when it lets a check time out."),
    ParamSpec("market_max_bids_per_order", 64, 1, 10_000, "bids",
              "Most bids one order takes in a window (bounds the auction's work at the window's close)."),
    ParamSpec("market_verifier_tries", 16, 1, 1_000, "providers",
              "Providers looked at, from a seeded start, to find an eligible verifier."),
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
                TxType(p.REGISTER_PROVIDER, "register_provider", p.REGISTER_PROVIDER_CODEC,
                       trade.apply_register_provider, "Bond stake as a compute provider of an operator (or top up)."),
                TxType(p.POST_OFFER, "post_offer", p.POST_OFFER_CODEC, trade.apply_post_offer,
                       "Post (or replace) the provider's capacity offer: resources and prices."),
                TxType(p.WITHDRAW_OFFER, "withdraw_offer", p.NO_ARGS_CODEC, trade.apply_withdraw_offer,
                       "Withdraw the provider's offer; its open bids lose at their window's close."),
                TxType(p.RETIRE_PROVIDER, "retire_provider", p.NO_ARGS_CODEC, trade.apply_retire_provider,
                       "Return the market bond (no active leases or pending checks)."),
                TxType(p.POST_ORDER, "post_order", p.POST_ORDER_CODEC, trade.apply_post_order,
                       "Post an order (train or serve), escrowing its budget, open for bids for a window."),
                TxType(p.BID, "bid", p.BID_CODEC, trade.apply_bid,
                       "Bid a price on an order during its window (bonded provider whose offer covers it)."),
                TxType(p.REPORT_WORK, "report_work", p.REPORT_WORK_CODEC, trade.apply_report_work,
                       "Report a lease's work: a digest, and served tokens on per-token leases (provider only)."),
                TxType(p.WITHDRAW_PAY, "withdraw_pay", p.LEASE_REF_CODEC, trade.apply_withdraw_pay,
                       "Take what a lease owes for its reported work (provider only)."),
                TxType(p.CLOSE_LEASE, "close_lease", p.LEASE_REF_CODEC, trade.apply_close_lease,
                       "Close a lease early: reported work is paid, the rest refunded (consumer only)."),
                TxType(p.CHECK_RESULT, "check_result", p.CHECK_RESULT_CODEC, trade.apply_check_result,
                       "Answer a spot check: did the re-run match the reported work (drawn verifier only)."),
                TxType(p.CANCEL_ORDER, "cancel_order", p.ORDER_REF_CODEC, trade.apply_cancel_order,
                       "Cancel an order still taking bids; its escrow is refunded (consumer only)."),
                TxType(p.REPORT_TRAINING, "report_training", p.REPORT_TRAINING_CODEC, trade.apply_report_training,
                       "Report a training lease's work with a Merkle root over its checkpoint boundaries "
                       "(provider only)."),
            ],
            params=list(PARAMS),
        )

    def end_block(self, state: Journal, ctx: BlockContext) -> None:
        """Jobs due now, then the market: missed checks, report timeouts, lease ends (freeing capacity before
        auctions use it), closing bid windows, the spot-check draw, the concentration record."""
        ids = due_ids(state, ctx.height)
        for jid in ids:
            job = get_job(state, jid)
            if job is not None:
                rules.due(state, job, ctx.height)
        if ids:
            state.delete(due_key(ctx.height))
        self._market(state, ctx)

    @staticmethod
    def _market(state: Journal, ctx: BlockContext) -> None:
        h = ctx.height
        for cid in dequeue(state, b"c", h):
            check = get_check(state, cid)
            if check is not None and check.status == CheckStatus.PENDING:
                checks.expire(state, check, h)
        timeout = params.get(state, "market_report_timeout_blocks")
        for lid in dequeue(state, b"t", h):
            lease = get_lease(state, lid)
            if (lease is not None and lease.status == LeaseStatus.ACTIVE
                    and lease.last_report + timeout <= h < lease.end):
                leases.fail(state, lease, h, LeaseStatus.TIMED_OUT)
        for lid in dequeue(state, b"e", h):
            lease = get_lease(state, lid)
            if lease is not None and lease.status == LeaseStatus.ACTIVE and lease.end == h:
                leases.finish(state, lease, h, LeaseStatus.ENDED)
        for oid in dequeue(state, b"w", h):
            order = get_order(state, oid)
            if order is not None and order.status == OrderStatus.BIDDING and order.window_end == h:
                auction.close_window(state, order, h)
        checks.sample(state, h, ctx.seed)
        concentration.record(state, h)
