"""Verified reliability: the agent's score, how often its results are checked, what it is paid, how work is routed.

All integer arithmetic in basis points (BPS = 10,000), so every node computes the same numbers.

- score: the mean of the agent's Beta(alpha, beta) over *verified* outcomes (a verified pass adds 1 to
  alpha; a verified fail or a missed result deadline adds 1 to beta), decayed toward the prior with
  `reputation_half_life_blocks`. Unverified tasks add nothing, so volume alone never moves it.
- sample rate: rate = min + (max - min) * (BPS - score) // BPS, with min = agents_verify_min_bps and
  max = agents_verify_max_bps: a new agent (score 5,000) with the defaults (2,000, 10,000) is checked
  60 % of the time, one at 9,000 is checked 28 %, one at 2,500 is checked 80 %.
- the draw: a task is verified when u64(sha256("ailedger/agents/sample" | block seed | task id)[:8])
  mod BPS < rate, drawn at the end of the block after the result's, whose seed (`BlockContext.seed`) is
  the hash of the block holding the result: unknown to the operator when it sends (state.Draw).
- pay: pay_bps = min(BPS, score * BPS // agents_full_pay_score_bps); the operator gets
  fee * pay_bps // BPS (rounded down), the consumer gets the rest back. The score used is the one after
  the task's own verdict (if it had one).
- routing: among active agents offering the type with price <= fee, the highest score wins, then the
  lowest price, then the earliest registration (its index), so neither volume nor a name can buy rank.
"""

from __future__ import annotations

from ailedger.agents.state import Agent
from ailedger.core.hashing import sha256
from ailedger.reputation.beta import Beta, add_evidence, decayed, score_bps

BPS = 10_000
SAMPLE_TAG = b"ailedger/agents/sample"


def beta_of(agent: Agent, height: int, half_life: int) -> Beta:
    return decayed(Beta(agent.alpha, agent.beta, agent.rep_height), height, half_life)


def score(agent: Agent, height: int, half_life: int) -> int:
    b = beta_of(agent, height, half_life)
    return score_bps(b.alpha, b.beta)


def record(agent: Agent, good: bool, height: int, half_life: int, weight: int) -> None:
    """Decay the agent's Beta to `height` and add one verified outcome (in place)."""
    b = add_evidence(beta_of(agent, height, half_life), good, weight)
    agent.alpha, agent.beta, agent.rep_height = b.alpha, b.beta, height


def sample_rate_bps(score_value: int, min_bps: int, max_bps: int) -> int:
    high = max(min_bps, max_bps)
    return min_bps + (high - min_bps) * (BPS - score_value) // BPS


def drawn(seed: bytes, task_id: int, rate_bps: int) -> bool:
    digest = sha256(SAMPLE_TAG + seed + task_id.to_bytes(8, "big"))
    return int.from_bytes(digest[:8], "big") % BPS < rate_bps


def pay_bps(score_value: int, full_pay_score_bps: int) -> int:
    return min(BPS, score_value * BPS // max(1, full_pay_score_bps))


def payout(fee: int, score_value: int, full_pay_score_bps: int) -> int:
    return fee * pay_bps(score_value, full_pay_score_bps) // BPS
