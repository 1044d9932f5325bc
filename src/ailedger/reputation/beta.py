"""Beta reputation in integer fixed point, with decay toward the prior.

An account's standing in a role is Beta(alpha, beta): alpha counts good outcomes, beta bad ones, both
starting at the prior 1.0. The score is the mean alpha / (alpha + beta), in basis points. Old evidence
fades: between two events the part of alpha and of beta above the prior halves every
`reputation_half_life_blocks` blocks, so an account cannot live forever on a good past, and a bad
past is forgiven slowly. Everything is an integer (1.0 = SCALE = 1,000,000), so every node computes
the same score bit for bit.

Decay of an excess d over `elapsed` blocks with half-life H (elapsed = q*H + r, 0 <= r < H):

    d' = floor( floor(d / 2^q) * (2H - r) / (2H) )

Whole half-lives are exact shifts; within the last, partial half-life 2^(-r/H) is replaced by the
chord 1 - r/(2H) between its end points (1 at r = 0, 1/2 at r = H). The chord lies above the curve
by at most 0.043 (at r ~ 0.47 H), so decay is a little slower than exact, never faster; the result
is continuous across whole half-lives and never increases with `elapsed`.
"""

from __future__ import annotations

from dataclasses import dataclass

SCALE = 1_000_000  # fixed point: SCALE means 1.0
PRIOR = SCALE  # alpha = beta = 1.0 before any evidence: the uniform Beta(1, 1), score 5,000 bps
BPS = 10_000
CAP = 2**63 - 1  # alpha and beta saturate here (u64 fields that also fit a signed 64-bit integer)


@dataclass(frozen=True)
class Beta:
    alpha: int = PRIOR
    beta: int = PRIOR
    height: int = 0  # block height at which alpha and beta were last decayed

    def score_bps(self) -> int:
        return score_bps(self.alpha, self.beta)


def decay_excess(excess: int, elapsed: int, half_life: int) -> int:
    """The excess over the prior left after `elapsed` blocks (formula in the module docstring)."""
    if excess <= 0 or elapsed <= 0:
        return max(excess, 0)
    whole, rem = divmod(elapsed, half_life)
    if whole >= 64:  # every u64 excess is gone after 64 halvings
        return 0
    excess >>= whole
    return excess * (2 * half_life - rem) // (2 * half_life)


def decayed(b: Beta, height: int, half_life: int) -> Beta:
    """`b` as seen at `height`; a height at or before `b.height` changes nothing."""
    elapsed = height - b.height
    if elapsed <= 0:
        return b
    return Beta(PRIOR + decay_excess(b.alpha - PRIOR, elapsed, half_life),
                PRIOR + decay_excess(b.beta - PRIOR, elapsed, half_life), height)


def add_evidence(b: Beta, good: bool, weight: int) -> Beta:
    """One outcome of `weight` (fixed point) added to alpha (good) or beta (bad), saturating at CAP."""
    if good:
        return Beta(min(b.alpha + weight, CAP), b.beta, b.height)
    return Beta(b.alpha, min(b.beta + weight, CAP), b.height)


def score_bps(alpha: int, beta: int) -> int:
    """Mean of Beta(alpha, beta) in basis points, rounded down; always within 0..10,000."""
    return alpha * BPS // (alpha + beta)
