"""Spot checks: which work reports are re-done by a second provider, who does it, and what silence costs.

Sampling. The leases that reported work in block H are sampled at the end of block H + 1 with that
block's seed (the hash of block H, which already contains the reports, so a provider cannot know when
it sends a report whether it will be checked). A lease is checked when
    u64(tagged("mkt-check", seed || lease id)) mod 10,000 < rate_bps, where
    rate_bps = market_check_min_bps + (market_check_max_bps - market_check_min_bps) x (10,000 - r) / 10,000
and r is the provider's compute-provider reputation in basis points: a provider of perfect reputation is
checked at the minimum rate, one of zero reputation at the maximum, a newcomer (5,000) half-way.

The verifier. Drawn from the provider list starting at u64(tagged("mkt-verifier", seed || lease id)) mod n
and walking forward (at most `market_verifier_tries` steps) to the first provider that is bonded at
least `market_provider_min_stake`, is neither the lease's provider nor its consumer, and declares a
different operator. No such provider: the report goes unchecked (a thin market checks less).

The seed is kept with the check: a training check re-runs the segments of the run it picks (provider/spotcheck.py),
so the trainer learns which segments are checked only after it has committed to all of them.

The answer. The verifier re-runs the sampled work off the ledger (provider/verify.py) and sends
check_result within `market_check_timeout_blocks`. A failed check fails the lease (leases.fail). An
unanswered check is the verifier's fault, not the provider's: the verifier was drawn and bonded, so it
loses `market_check_miss_bps` of its bond to the lease's consumer and compute-provider reputation, and
the report stands. Verifiers are not paid per check; answering is a duty of a bonded provider and
earns reputation (which wins ties and lowers the provider's own check rate).
"""

from __future__ import annotations

from ailedger.chain import params
from ailedger.chain.state import Journal
from ailedger.core.hashing import tagged
from ailedger.market import leases
from ailedger.market.book import (
    Check,
    CheckStatus,
    Lease,
    LeaseStatus,
    count,
    dequeue,
    enqueue,
    get_lease,
    get_provider,
    next_id,
    provider_at,
    put_check,
    put_check_seed,
    put_provider,
    u64,
)
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role

BPS = 10_000


def rate_bps(lo: int, hi: int, reputation_bps: int) -> int:
    return lo + (hi - lo) * (BPS - reputation_bps) // BPS


def _draw(tag: bytes, seed: bytes, lid: int) -> int:
    return int.from_bytes(tagged(tag, seed + u64(lid))[:8], "big")


def pick_verifier(state: Journal, lease: Lease, seed: bytes) -> bytes | None:
    n = count(state, b"mkt/pn")
    if not n:
        return None
    floor = params.get(state, "market_provider_min_stake")
    start = _draw(b"mkt-verifier", seed, lease.id) % n
    for step in range(min(n, params.get(state, "market_verifier_tries"))):
        p = get_provider(state, provider_at(state, (start + step) % n))
        if (p is not None and p.bond >= floor and p.address not in (lease.provider, lease.consumer)
                and p.operator != lease.operator):
            return p.address
    return None


def sample(state: Journal, height: int, seed: bytes) -> None:
    """End of block `height`: draw checks among the leases that reported in block height - 1."""
    lo, hi = params.get(state, "market_check_min_bps"), params.get(state, "market_check_max_bps")
    for lid in dict.fromkeys(dequeue(state, b"r", height - 1)):
        lease = get_lease(state, lid)
        if lease is None or not lease.reports:
            continue
        score = reputation.score_bps(state, lease.provider, Role.COMPUTE_PROVIDER, height)
        if _draw(b"mkt-check", seed, lid) % BPS >= rate_bps(lo, hi, score):
            continue
        verifier = pick_verifier(state, lease, seed)
        if verifier is None:
            continue
        cid = next_id(state, b"mkt/cn")
        deadline = height + params.get(state, "market_check_timeout_blocks")
        put_check(state, Check(cid, lid, lease.provider, verifier, lease.digest, lease.reports, height, deadline))
        put_check_seed(state, cid, seed)  # a training check re-runs the segments this seed picks
        enqueue(state, b"c", deadline, cid)
        _pending(state, verifier, +1)
        _pending(state, lease.provider, +1)  # its bond stays locked until the check is settled


def _pending(state: Journal, verifier: bytes, delta: int) -> None:
    p = get_provider(state, verifier)
    if p is not None:
        p.pending_checks += delta
        put_provider(state, p)


def answer(state: Journal, check: Check, passed: bool, digest: bytes, height: int) -> None:
    check.status, check.answer = (CheckStatus.PASSED if passed else CheckStatus.FAILED), digest
    put_check(state, check)
    _pending(state, check.verifier, -1)
    _pending(state, check.provider, -1)
    weight = leases.rep_weight(state)
    reputation.record_outcome(state, check.verifier, Role.COMPUTE_PROVIDER, True, height, weight)
    if passed:  # verified work is the evidence reputation is for
        reputation.record_outcome(state, check.provider, Role.COMPUTE_PROVIDER, True, height, weight)
        return
    lease = get_lease(state, check.lease)
    if lease is None:
        return
    if lease.status == LeaseStatus.ACTIVE:
        leases.fail(state, lease, height, LeaseStatus.FAILED_CHECK)
    else:  # the lease already ended: the bond still answers for the false report
        leases.slash_bond(state, lease.provider, params.get(state, "market_slash_bps"), lease.consumer)
        reputation.record_outcome(state, lease.provider, Role.COMPUTE_PROVIDER, False, height, weight)


def expire(state: Journal, check: Check, height: int) -> None:
    """The verifier let the deadline pass: it is at fault (module docstring)."""
    check.status = CheckStatus.MISSED
    put_check(state, check)
    _pending(state, check.verifier, -1)
    _pending(state, check.provider, -1)
    lease = get_lease(state, check.lease)
    to = lease.consumer if lease is not None else check.provider
    leases.slash_bond(state, check.verifier, params.get(state, "market_check_miss_bps"), to)
    reputation.record_outcome(state, check.verifier, Role.COMPUTE_PROVIDER, False, height, leases.rep_weight(state))
