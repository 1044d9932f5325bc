"""A block's settlement, end to end: vesting due now, then every receipt the block stored.

Order inside the settlement module's end_block (after billing's and the Datanet module's, so record
statuses decided in this block count): (1) vesting due at this height is released or forfeited,
(2) the block's charged receipts are read as columns, planned (plan.py) and paid (payout.py),
(3) `bil/uhead` moves to `bil/nr`: every receipt stored so far is settled (receipts that charged
nothing need no money moved), (4) the block's summary and the lifetime totals are written.
"""

from __future__ import annotations

from ailedger.billing import state as billing
from ailedger.chain.state import Journal
from ailedger.settlement.batch import load_batch, take_row_blocks
from ailedger.settlement.payout import Lines, apply_plan, finish, release_vesting
from ailedger.settlement.plan import plan_block
from ailedger.settlement.state import get_totals


def settle(state: Journal, height: int) -> None:
    totals = get_totals(state)
    lines = Lines()
    released, forfeited = release_vesting(state, height, lines, totals)
    blocks = take_row_blocks(state, height)
    first = billing.get_u64(state, billing.UNSETTLED_HEAD_KEY)
    end = billing.get_u64(state, billing.RECEIPT_COUNT_KEY)
    if not blocks and first == end and not (released or forfeited):
        return
    summary = apply_plan(state, height, plan_block(state, load_batch(blocks)), lines, totals)
    summary.first_seq, summary.end_seq = first, end
    summary.released, summary.forfeited = released, forfeited
    if end != first:
        billing.put_u64(state, billing.UNSETTLED_HEAD_KEY, end)
    finish(state, height, summary, lines, totals)
