"""Scores to shares: the integer rule that turns per-record scores into basis points.

Contributors are paid by what this rule returns, and settlement and any auditor recompute it, so it
is integer arithmetic only (no float, no division but floor division): the same inputs give the same
basis points on every machine. The rule, step by step (docs/attribution.md, "Shares rule"):

1. Inputs are non-negative integer scores by record hash (fixed point: `fixedpoint.to_fixed` is the
   one documented way a float score becomes one) and the snapshot's accepted records, each with its
   contributor.
2. Scored records that are not accepted records of the snapshot are dropped and reported; they never
   earn, whatever their score.
3. Scores are summed per contributor (or kept per record, for record shares).
4. If the total is zero there are no shares at all (an empty result), never an equal split.
5. Otherwise 10,000 basis points are apportioned by largest remainder (Hamilton): each key first gets
   floor(10,000 * score / total); the basis points still missing go one each to the keys with the
   largest remainders (10,000 * score mod total), equal remainders to the smaller key bytes first.

Why Hamilton: every share is within one basis point of its exact proportion, the shares sum to
exactly 10,000, and a larger score never gets fewer basis points, which is what "in proportion to
influence" can mean once money is counted in integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ailedger.core import errors
from ailedger.core.errors import LedgerError

BPS = 10_000  # basis points in a whole
RECORD_BYTES = 32
ADDRESS_BYTES = 20


@dataclass(frozen=True)
class Share:
    key: bytes  # a contributor's 20-byte address, or a record's 32-byte hash
    bps: int  # may be 0 when a positive score rounds below one basis point
    score: int  # the integer score behind it (summed over the contributor's records)


@dataclass(frozen=True)
class Shares:
    """Every key with a positive score, most basis points first, then larger score, then key bytes."""

    shares: tuple[Share, ...]
    total: int  # the sum of the counted scores
    ignored: tuple[bytes, ...]  # scored record hashes that are not accepted records, ascending

    def bps(self) -> dict[bytes, int]:
        """Basis points by key, for keys that get at least one."""
        return {s.key: s.bps for s in self.shares if s.bps}


def apportion(weights: Mapping[bytes, int], units: int = BPS) -> dict[bytes, int]:
    """Split `units` in proportion to `weights` by largest remainder; {} when every weight is 0.

    Keys with weight 0 get nothing; keys with a positive weight all appear, some possibly with 0.
    """
    total = sum(weights.values())
    if total == 0:
        return {}
    positive = sorted(k for k, w in weights.items() if w > 0)
    out = {k: units * weights[k] // total for k in positive}
    left = units - sum(out.values())
    by_remainder = sorted(positive, key=lambda k: (-(units * weights[k] % total), k))
    for k in by_remainder[:left]:
        out[k] += 1
    return out


def contributor_shares(scores: Mapping[bytes, int], accepted: Mapping[bytes, bytes]) -> Shares:
    """Basis points per contributor: `scores` by record hash, `accepted` maps record hash to contributor."""
    counted, ignored = _split(scores, accepted)
    totals: dict[bytes, int] = {}
    for record, score in counted.items():
        contributor = accepted[record]
        if len(contributor) != ADDRESS_BYTES:
            raise LedgerError(errors.BAD_ATTRIBUTION_SCORES, f"record {record.hex()}: its contributor is not a "
                                                             f"{ADDRESS_BYTES}-byte address")
        totals[contributor] = totals.get(contributor, 0) + score
    return _shares(totals, ignored)


def record_shares(scores: Mapping[bytes, int], accepted: Mapping[bytes, bytes]) -> Shares:
    """Basis points per accepted record, by the same rule (ties to the smaller record hash)."""
    counted, ignored = _split(scores, accepted)
    return _shares(counted, ignored)


def _split(scores: Mapping[bytes, int], accepted: Mapping[bytes, bytes]) -> tuple[dict[bytes, int], tuple[bytes, ...]]:
    """Check every score, keep those of accepted records, and name the others."""
    for record, score in scores.items():
        if not isinstance(record, bytes) or len(record) != RECORD_BYTES:
            raise LedgerError(errors.BAD_ATTRIBUTION_SCORES, f"{record!r} is not a {RECORD_BYTES}-byte record hash")
        if type(score) is not int or score < 0:
            raise LedgerError(errors.BAD_ATTRIBUTION_SCORES, f"record {record.hex()}: score {score!r} is not a "
                                                             "non-negative integer")
    counted = {r: s for r, s in scores.items() if r in accepted}
    return counted, tuple(sorted(r for r in scores if r not in accepted))


def _shares(totals: Mapping[bytes, int], ignored: tuple[bytes, ...]) -> Shares:
    bps = apportion(totals)
    order = sorted(bps, key=lambda k: (-bps[k], -totals[k], k))
    return Shares(tuple(Share(k, bps[k], totals[k]) for k in order), sum(totals.values()), ignored)
