"""How a record leaves `pending`: gate rejection, or finalisation at the end of its voting window.

Finalisation of a record whose window ends at height h (run by the module's end_block at h, after
the block's transactions, so votes cast in block h still count):

* fewer votes than the Datanet's quorum -> expired: the stake goes back to the contributor; no
  reputation moves, nobody is paid or slashed.
* otherwise accepted iff accept_weight > reject_weight (strict; a tie rejects).
  - accepted: the stake goes back to the contributor, whose contributor reputation goes up; every
    reject-voter is slashed min(its bonded stake, datanet_vote_slash_bps x stake_per_record / 10,000)
    and the slashed sum is split among the accept-voters.
  - rejected: the contributor's reputation goes down; every accept-voter is slashed by the same rule,
    and the record's stake plus those slashes are split among the reject-voters.
  - voters with the outcome gain validator reputation, voters against it lose it.

The split (`split_pro_rata`) is exact in integers: each recipient with weight w out of a total
weight W gets floor(amount x w / W); the r micro-units left over (r < number of recipients) go one
each to the first r recipients ordered by weight descending, then address ascending. Only voters
with weight > 0 receive; if there are none (possible only when every vote weighs 0), the amount
goes to the Datanet's validator pool. A gate rejection sends the whole stake to that pool.
"""

from __future__ import annotations

from ailedger.chain import accounts, params
from ailedger.chain.state import Journal
from ailedger.datanet import frontier
from ailedger.datanet.state import (
    Config,
    ContributorStats,
    Counters,
    RecordState,
    Status,
    accepted_key,
    get_amount,
    get_contributor,
    pool_key,
    put_amount,
    put_contributor,
    put_record_state,
    tree_key,
)
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role

BPS = 10_000


def split_pro_rata(amount: int, weights: list[tuple[bytes, int]]) -> list[tuple[bytes, int]]:
    """Split `amount` exactly by weight (rule in the module docstring); [] when nobody has weight."""
    order = sorted(((a, w) for a, w in weights if w > 0), key=lambda aw: (-aw[1], aw[0]))
    if amount <= 0 or not order:
        return []
    total = sum(w for _, w in order)
    shares = [amount * w // total for _, w in order]
    for i in range(amount - sum(shares)):
        shares[i] += 1
    return [(a, s) for (a, _), s in zip(order, shares, strict=True)]


def add_to_pool(state: Journal, name: str, amount: int) -> None:
    if amount:
        put_amount(state, pool_key(name), get_amount(state, pool_key(name)) + amount)


def slash(state: Journal, height: int, address: bytes, amount: int) -> int:
    """Take up to `amount` from the bonded stake of `address`; returns what was taken."""
    acct = accounts.get_account(state, address)
    taken = min(acct.stake, amount)
    if taken:
        accounts.set_stake(state, height, address, acct, acct.stake - taken)
        accounts.put_account(state, address, acct)
    return taken


def pay(state: Journal, name: str, amount: int, weights: list[tuple[bytes, int]]) -> None:
    """Credit `amount` to the voters by weight, or to the pool when no voter has weight."""
    payouts = split_pro_rata(amount, weights)
    if not payouts:
        add_to_pool(state, name, amount)
    for address, share in payouts:
        if share:
            accounts.credit(state, address, share)


def _contributor_stats(state: Journal, name: str, rec: RecordState) -> ContributorStats:
    return get_contributor(state, name, rec.contributor) or ContributorStats()


def gate_reject(state: Journal, height: int, cfg: Config, counters: Counters, record_hash: bytes,
                rec: RecordState, gate: int, reason: int) -> None:
    """A gatekeeper's verdict: the record is out at once and its stake goes to the validator pool."""
    rec.status, rec.gate, rec.reason, rec.finalised = Status.GATE_REJECTED, gate, reason, height
    put_record_state(state, cfg.name, record_hash, rec)
    add_to_pool(state, cfg.name, rec.stake)
    counters.pending -= 1
    counters.gate_rejected += 1
    stats = _contributor_stats(state, cfg.name, rec)
    stats.gate_rejected += 1
    put_contributor(state, cfg.name, rec.contributor, stats)
    reputation.record_outcome(state, rec.contributor, Role.CONTRIBUTOR, False, height,
                              params.get(state, "datanet_rep_gate_weight"))


def finalise(state: Journal, height: int, cfg: Config, counters: Counters, record_hash: bytes,
             rec: RecordState) -> None:
    """Decide one pending record at the end of its window and move every amount it involves."""
    name = cfg.name
    stats = _contributor_stats(state, name, rec)
    rec.finalised = height
    counters.pending -= 1
    if len(rec.votes) < cfg.quorum:
        rec.status = Status.EXPIRED
        counters.expired += 1
        stats.expired += 1
        accounts.credit(state, rec.contributor, rec.stake)
    else:
        accept_weight = sum(v.weight for v in rec.votes if v.accept)
        reject_weight = sum(v.weight for v in rec.votes if not v.accept)
        accepted = accept_weight > reject_weight
        per_vote = params.get(state, "datanet_vote_slash_bps") * cfg.stake_per_record // BPS
        slashed = sum(slash(state, height, v.voter, per_vote) for v in rec.votes if bool(v.accept) != accepted)
        if accepted:
            rec.status, rec.seq = Status.ACCEPTED, counters.accepted
            state.set(accepted_key(name, rec.seq), record_hash)
            state.set(tree_key(name), frontier.append(state.get(tree_key(name)) or b"", rec.seq, record_hash))
            counters.accepted += 1
            stats.accepted += 1
            accounts.credit(state, rec.contributor, rec.stake)
            pot = slashed
        else:
            rec.status = Status.REJECTED
            counters.rejected += 1
            stats.rejected += 1
            pot = rec.stake + slashed
        pay(state, name, pot, [(v.voter, v.weight) for v in rec.votes if bool(v.accept) == accepted])
        reputation.record_outcome(state, rec.contributor, Role.CONTRIBUTOR, accepted, height,
                                  params.get(state, "datanet_rep_contributor_weight"))
        weight = params.get(state, "datanet_rep_validator_weight")
        for v in rec.votes:
            reputation.record_outcome(state, v.voter, Role.VALIDATOR, bool(v.accept) == accepted, height, weight)
    put_contributor(state, name, rec.contributor, stats)
    put_record_state(state, name, record_hash, rec)
