"""The governance ledger module (number 7): proposals, stake-weighted votes, a timelock, the treasury.

A parameter of any module changes only when a proposal to change it passes here and its timelock
ends; the quorum, threshold, veto share, periods and deposits that decide that are parameters too,
bounded so that no vote can make capture easy (a quorum of at least 10 %, a majority of at least
half, a veto of at most half). Rules, layout and figures: docs/governance.md.
"""

from __future__ import annotations

from typing import Any

from ailedger.chain.module import BlockContext, Module, TxType
from ailedger.chain.params import ParamRegistry, ParamSpec
from ailedger.chain.state import Journal
from ailedger.chain.tx import Tx
from ailedger.core.encoding import MAX_AMOUNT
from ailedger.governance import lifecycle, txs
from ailedger.governance.payloads import DEPOSIT_CODEC, FUND_CODEC, PROPOSE_CODEC, VOTE_CODEC

NUMBER = 7

PARAMS = [
    ParamSpec("gov_min_deposit", 10_000_000, 1, MAX_AMOUNT, "micro-units",
              "Deposit a proposal must gather before it opens for voting."),
    ParamSpec("gov_min_initial_deposit_bps", 2_500, 0, 10_000, "basis points of gov_min_deposit",
              "Share of gov_min_deposit the proposer must put up with the proposal (at least 1 micro-unit)."),
    ParamSpec("gov_deposit_period_blocks", 1_000, 1, 10_000_000, "blocks",
              "Blocks a proposal may gather deposits; below the minimum at the end it is dropped."),
    ParamSpec("gov_voting_period_blocks", 1_000, 1, 10_000_000, "blocks",
              "Blocks after the opening block during which votes are taken; the tally runs at the end of the last."),
    ParamSpec("gov_quorum_bps", 3_340, 1_000, 10_000, "basis points of bonded stake",
              "Share of the total bonded stake (at the block before voting opened) that must vote."),
    ParamSpec("gov_threshold_bps", 5_000, 5_000, 9_999, "basis points of yes + no",
              "A proposal passes when yes is more than this share of yes + no."),
    ParamSpec("gov_veto_bps", 3_340, 1_000, 5_000, "basis points of all votes",
              "A proposal is vetoed (deposits to the treasury) when veto is more than this share of all votes."),
    ParamSpec("gov_timelock_blocks", 100, 1, 10_000_000, "blocks",
              "Blocks between a proposal passing and its execution at the end of the block they lead to."),
]


class GovernanceModule(Module):
    def __init__(self) -> None:
        super().__init__(
            name="governance",
            number=NUMBER,
            tx_types=[
                TxType(txs.PROPOSE, "gov_propose", PROPOSE_CODEC, self._propose,
                       "Propose a parameter change, a text or a treasury spend, with a deposit."),
                TxType(txs.DEPOSIT, "gov_deposit", DEPOSIT_CODEC, txs.apply_deposit,
                       "Add to a proposal's deposit during its deposit period."),
                TxType(txs.VOTE, "gov_vote", VOTE_CODEC, txs.apply_vote,
                       "Vote yes, no, abstain or veto, weighted by your bonded stake when voting opened."),
                TxType(txs.FUND, "gov_fund_treasury", FUND_CODEC, txs.apply_fund,
                       "Give an amount of your balance to the governance treasury."),
            ],
            params=list(PARAMS),
        )
        self._registry: ParamRegistry | None = None

    def bind(self, registry: ParamRegistry) -> None:
        self._registry = registry

    @property
    def registry(self) -> ParamRegistry:
        if self._registry is None:
            raise RuntimeError("the governance module is used outside a Runtime")
        return self._registry

    def _propose(self, state: Journal, ctx: BlockContext, tx: Tx, p: Any) -> None:
        txs.apply_propose(state, ctx, tx, p, self.registry)

    def end_block(self, state: Journal, ctx: BlockContext) -> None:
        lifecycle.end_block(state, ctx.height, self.registry)
