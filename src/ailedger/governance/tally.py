"""The tally rule: from the stake that voted (and how) to an outcome, in integers.

With V = yes + no + abstain + veto and T = the total bonded stake at the block before voting opened:
  1. V * 10,000 < gov_quorum_bps * T (or T = 0)    -> no quorum   (deposits to the treasury)
  2. veto * 10,000 > gov_veto_bps * V              -> vetoed      (deposits to the treasury)
  3. yes * 10,000 > gov_threshold_bps * (yes + no) -> passed      (deposits refunded)
  4. otherwise                                     -> rejected    (deposits refunded)
Abstain counts towards the quorum and the veto base only; with no yes and no no, a proposal is rejected.
Comparisons are cross-multiplied so no division (and no rounding) decides an outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from ailedger.governance.state import Status

BPS = 10_000


@dataclass(frozen=True)
class Rules:
    quorum_bps: int
    threshold_bps: int
    veto_bps: int


def outcome(total_stake: int, yes: int, no: int, abstain: int, veto: int, rules: Rules) -> int:
    """The status a proposal ends its voting period with (rule in the module docstring)."""
    voted = yes + no + abstain + veto
    if total_stake == 0 or voted * BPS < rules.quorum_bps * total_stake:
        return Status.NO_QUORUM
    if veto * BPS > rules.veto_bps * voted:
        return Status.VETOED
    if yes * BPS > rules.threshold_bps * (yes + no):
        return Status.PASSED
    return Status.REJECTED
