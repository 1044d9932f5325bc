"""Writing a block's settlement: earnings, lines, vesting, refunds, validator pools, totals, escrow.

One read and one write per distinct payee (its earnings account and its line for the block), per
refunded caller and per Datanet; never per receipt.

Validators' pool (rule 4): per Datanet and block, the sum of its receipts' validator parts is split
among the Datanet's registered validators pro rata to their bonded stake now, largest remainder with
ties to the larger stake then the smaller address (`datanet.rules.split_pro_rata`, the rule the
Datanet's vote payouts use). With no validator holding stake it goes to the Datanet's validator pool
(`dn/pool/<name>`), which keeps it for the validators to come.

Quality gate (rule 5): a contributor whose contributor reputation (`reputation.score_bps`, role 1) is
below `settlement_vesting_threshold_bps` when a block settles has that block's data earnings held
(vesting) for `settlement_vesting_blocks`. At the end of block settle height + N the holding is
released to its earnings balance if the contributor's reputation is then at or above the threshold,
else forfeited to the Datanet's validators (pro rata to bonded stake as above, or its pool).
"""

from __future__ import annotations

from collections import defaultdict

from ailedger.billing import state as billing
from ailedger.chain import accounts, params
from ailedger.chain.state import Journal
from ailedger.core import errors
from ailedger.core.amounts import checked_add
from ailedger.core.errors import LedgerError
from ailedger.datanet import rules as datanet_rules
from ailedger.datanet import state as datanets
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role as RepRole
from ailedger.settlement.plan import Plan
from ailedger.settlement.state import (
    LINE,
    SUMMARY,
    BlockSummary,
    Entry,
    Line,
    Role,
    Totals,
    Vesting,
    address_vesting_key,
    get_earnings,
    get_line,
    ineligible_key,
    line_height_key,
    line_key,
    pack_ineligible,
    pack_vesting,
    put_earnings,
    put_totals,
    summary_key,
    unpack_vesting,
    vest_key,
)

_U64_BYTES = 8
EntryKey = tuple[str, str, int, int]  # datanet, model, version, role


class Lines:
    """The entries each address earns in one block, merged and written once per address."""

    def __init__(self) -> None:
        self.by_address: dict[bytes, dict[EntryKey, list[int]]] = defaultdict(dict)

    def add(self, address: bytes, key: EntryKey, amount: int = 0, held: int = 0, forfeited: int = 0,
            count: int = 0) -> None:
        cur = self.by_address[address].setdefault(key, [0, 0, 0, 0])
        cur[0] += amount
        cur[1] += held
        cur[2] += forfeited
        cur[3] += count

    def write(self, state: Journal, height: int) -> None:
        """Each address: its line for `height` (merged with one already written) and its earnings account."""
        for address in sorted(self.by_address):
            entries = self.by_address[address]
            line = get_line(state, address, height)
            e = get_earnings(state, address)
            if line is None:
                line = Line()
                state.set(line_height_key(address, e.lines), height.to_bytes(_U64_BYTES, "big"))
                e.lines += 1
            for (datanet, model, version, role), (amount, held, forfeited, count) in sorted(entries.items()):
                line.entries.append(Entry(datanet, model, version, role, amount, held, forfeited, count))
                e.balance = checked_add(e.balance, amount)
                e.earned = checked_add(e.earned, amount)
                if role == Role.FORFEITED:
                    e.held -= forfeited
                    e.forfeited += forfeited
                elif role == Role.RELEASED:
                    e.held -= amount
                else:
                    e.held = checked_add(e.held, held)
                    e.vested = checked_add(e.vested, held)
            state.set(line_key(address, height), LINE.encode(line))
            put_earnings(state, address, e)
        self.by_address.clear()


def pay_validators(state: Journal, lines: Lines, datanet: str, amount: int, role: int, count: int) -> int:
    """Split `amount` among the Datanet's validators by bonded stake; returns what went to its pool instead."""
    if amount <= 0:
        return 0
    weights = [(v, accounts.get_account(state, v).stake) for v in datanets.addresses(state,
                                                                                     datanets.validators_key(datanet))]
    payouts = datanet_rules.split_pro_rata(amount, weights)
    if not payouts:
        datanet_rules.add_to_pool(state, datanet, amount)
        return amount
    for address, share in payouts:
        lines.add(address, (datanet, "", 0, role), amount=share, count=count)
    return 0


def release_vesting(state: Journal, height: int, lines: Lines, totals: Totals) -> tuple[int, int]:
    """Vesting due now: released, or forfeited to the Datanet's validators (rule 5). (released, forfeited)."""
    raw = state.get(vest_key(height))
    if not raw:
        return 0, 0
    state.delete(vest_key(height))
    threshold = params.get(state, "settlement_vesting_threshold_bps")
    released = forfeited = 0
    due = unpack_vesting(raw)
    for v in due:
        where = (v.datanet, "", 0)
        if reputation.score_bps(state, v.address, RepRole.CONTRIBUTOR, height) >= threshold:
            lines.add(v.address, (*where, Role.RELEASED), amount=v.amount, count=1)
            released += v.amount
            continue
        lines.add(v.address, (*where, Role.FORFEITED), forfeited=v.amount, count=1)
        forfeited += v.amount
        pooled = pay_validators(state, lines, v.datanet, v.amount, Role.FORFEIT_SHARE, 1)
        totals.forfeit_paid += v.amount - pooled
    for address in sorted({v.address for v in due}):
        key = address_vesting_key(address)
        state.set(key, pack_vesting([x for x in unpack_vesting(state.get(key)) if x.release_height > height]))
    totals.released += released
    totals.forfeited += forfeited
    return released, forfeited


def hold(state: Journal, height: int, vesting: dict[tuple[bytes, str], int]) -> None:
    """Queue each (contributor, Datanet) holding for release at height + settlement_vesting_blocks."""
    release = height + params.get(state, "settlement_vesting_blocks")
    entries = [Vesting(a, release, amount, d) for (a, d), amount in sorted(vesting.items()) if amount > 0]
    if not entries:
        return
    key = vest_key(release)
    state.set(key, (state.get(key) or b"") + pack_vesting(entries))
    for v in entries:
        akey = address_vesting_key(v.address)
        state.set(akey, (state.get(akey) or b"") + pack_vesting([v]))


def apply_plan(state: Journal, height: int, plan: Plan, lines: Lines, totals: Totals) -> BlockSummary:
    """Rules 4 and 5 and the writes; checks that every micro-unit of the escrow paid out is accounted for."""
    threshold = params.get(state, "settlement_vesting_threshold_bps")
    gated: dict[bytes, bool] = {}
    vesting: dict[tuple[bytes, str], int] = defaultdict(int)
    earned = held = pooled = 0
    for (address, datanet, model, version, role), (amount, count) in sorted(plan.credits.items()):
        if role == Role.DATA:
            if address not in gated:
                gated[address] = reputation.score_bps(state, address, RepRole.CONTRIBUTOR, height) < threshold
            if gated[address]:
                lines.add(address, (datanet, model, version, role), held=amount, count=count)
                vesting[(address, datanet)] += amount
                held += amount
                continue
        lines.add(address, (datanet, model, version, role), amount=amount, count=count)
        earned += amount
    for datanet, (amount, count) in sorted(plan.validators.items()):
        p = pay_validators(state, lines, datanet, amount, Role.VALIDATOR, count)
        pooled += p
        earned += amount - p
    refunded = 0
    for caller, amount in sorted(plan.refunds.items()):
        acct = billing.get_account(state, caller)
        acct.prepaid = checked_add(acct.prepaid, amount)
        billing.put_account(state, caller, acct)
        refunded += amount
    if earned + held + refunded + pooled != plan.settled:
        raise LedgerError(errors.SETTLEMENT_UNBALANCED,
                          f"block {height}: settled {plan.settled} != earned {earned} + held {held} + "
                          f"refunded {refunded} + pooled {pooled}")
    hold(state, height, vesting)
    escrow = billing.get_u64(state, billing.ESCROW_KEY)
    if escrow < plan.settled:
        raise LedgerError(errors.SETTLEMENT_UNBALANCED, f"escrow {escrow} < settled {plan.settled}")
    billing.put_u64(state, billing.ESCROW_KEY, escrow - plan.settled)
    if plan.ineligible:
        state.set(ineligible_key(height), pack_ineligible(plan.ineligible))
    totals.settled += plan.settled
    totals.earned += earned
    totals.held += held
    totals.refunded += refunded
    totals.pooled += pooled
    totals.receipts += plan.receipts
    return BlockSummary(0, 0, plan.receipts, plan.settled, earned, held, refunded, pooled, 0, 0)


def finish(state: Journal, height: int, summary: BlockSummary, lines: Lines, totals: Totals) -> None:
    lines.write(state, height)
    state.set(summary_key(height), SUMMARY.encode(summary))
    put_totals(state, totals)
