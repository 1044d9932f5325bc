"""The settlement ledger module (number 6): every block's receipts paid out, exactly, by written rules.

Billing (module 5) charges each receipt into its escrow and writes the block's charged receipts as
packed columns; at the end of the block this module splits every charge between the data pool (the
receipt's accepted records' contributors, by attribution shares), the model owner, the serving
provider and the Datanet's validators, holds low-reputation contributors' earnings in vesting, and
credits per-address earnings balances that `withdraw` (0x0601) moves to the spendable balance.
Rules, layout and figures: docs/settlement.md.
"""

from __future__ import annotations

from ailedger.chain.module import BlockContext, Module, TxType
from ailedger.chain.params import ParamSpec
from ailedger.chain.state import Journal
from ailedger.settlement import rules, txs

NUMBER = 6

PARAMS = [
    ParamSpec("settlement_vesting_threshold_bps", 4_000, 0, 10_000, "basis points",
              "Contributors whose contributor reputation is below this have their earnings held (vesting)."),
    ParamSpec("settlement_vesting_blocks", 100, 1, 10**9, "blocks",
              "Blocks held earnings vest before they are released (reputation back at the threshold) or forfeited."),
]


class SettlementModule(Module):
    def __init__(self) -> None:
        super().__init__(
            name="settlement",
            number=NUMBER,
            tx_types=[TxType(txs.WITHDRAW, "withdraw_earnings", txs.WITHDRAW_CODEC, txs.apply_withdraw,
                             "Move an amount of your earnings balance to your spendable balance.")],
            params=list(PARAMS),
        )

    def end_block(self, state: Journal, ctx: BlockContext) -> None:
        """Release or forfeit the vesting due now, then settle every receipt this block stored."""
        rules.settle(state, ctx.height)
