"""The billing ledger module (number 5): prepaid balances, API keys and inference receipts.

A consumer moves part of its balance into a prepaid balance, then binds API keys to its account
(only a key's hash reaches the ledger), each for one serving provider and with a spending cap. The
provider serves calls against the balance it sees and submits receipts in batches; each receipt is
judged and charged by the fee rule (rules.py) into the module's escrow, which settlement will split
between data contributors, the model owner, the provider and validators. A withdrawal waits
`billing_withdraw_delay_blocks` in a withdrawing bucket that receipts may still charge, so a caller
cannot spend and withdraw before the provider's receipts land.

Transactions: 0x0501 deposit, 0x0502 withdraw, 0x0503 authorize_key, 0x0504 revoke_key,
0x0505 submit_receipts. Docs: docs/billing.md.
"""

from __future__ import annotations

from ailedger.billing import payloads as p
from ailedger.billing import rules, txs
from ailedger.chain.module import BlockContext, Module, TxType
from ailedger.chain.params import ParamSpec
from ailedger.chain.state import Journal
from ailedger.core.encoding import MAX_AMOUNT

NUMBER = 5

PARAMS = [
    ParamSpec("billing_withdraw_delay_blocks", 20, 1, 10**9, "blocks",
              "Blocks a withdrawal waits (still chargeable by receipts) before it returns to the balance."),
    ParamSpec("billing_max_keys_per_account", 64, 1, 1_000_000, "keys",
              "Most live (neither revoked nor expired) API keys one account may hold."),
    ParamSpec("billing_max_receipts_per_tx", 256, 1, p.MAX_RECEIPTS_WIRE, "receipts",
              "Most receipts one submit_receipts transaction may carry."),
    ParamSpec("billing_max_citations", 32, 0, p.MAX_CITATIONS_WIRE, "record hashes",
              "Most cited record hashes one receipt may carry."),
    ParamSpec("billing_base_price_per_1k", 0, 0, MAX_AMOUNT, "micro-units",
              "Price per 1,000 tokens of a base-only call (no adapter)."),
]


class BillingModule(Module):
    def __init__(self) -> None:
        super().__init__(
            name="billing",
            number=NUMBER,
            tx_types=[
                TxType(p.DEPOSIT, "deposit", p.AMOUNT_CODEC, txs.apply_deposit,
                       "Move an amount from the sender's balance into its prepaid balance."),
                TxType(p.WITHDRAW, "withdraw", p.AMOUNT_CODEC, txs.apply_withdraw,
                       "Start withdrawing prepaid funds; they return after billing_withdraw_delay_blocks."),
                TxType(p.AUTHORIZE_KEY, "authorize_key", p.AUTHORIZE_KEY_CODEC, txs.apply_authorize_key,
                       "Bind an API key (by its hash) to the sender's account for one provider, with a cap."),
                TxType(p.REVOKE_KEY, "revoke_key", p.KEY_REF_CODEC, txs.apply_revoke_key,
                       "Revoke an API key (its account only); later receipts for it are not charged."),
                TxType(p.SUBMIT_RECEIPTS, "submit_receipts", p.SUBMIT_RECEIPTS_CODEC, txs.apply_submit_receipts,
                       "Record a provider's receipts of served calls, charging each by the fee rule."),
            ],
            params=list(PARAMS),
        )

    def end_block(self, state: Journal, ctx: BlockContext) -> None:
        """Release the withdrawals due now, and stop counting keys whose last height this was as live."""
        rules.release_withdrawals(state, ctx.height)
        rules.expire_keys(state, ctx.height)
