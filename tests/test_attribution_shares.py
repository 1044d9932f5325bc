"""The shares rule: integer basis points summing to 10,000, by largest remainder, over accepted records."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.attribution.fixedpoint import fixed_scores, to_fixed, to_fixed_many
from ailedger.attribution.shares import BPS, Shares, apportion, contributor_shares, record_shares
from ailedger.core import errors
from ailedger.core.errors import LedgerError

A, B, C = (bytes([i]) * 20 for i in (1, 2, 3))


def rec(i: int) -> bytes:
    return i.to_bytes(32, "big")


# ---- worked examples of docs/attribution.md -------------------------------------------------------------
@pytest.mark.parametrize(("scores", "expect"), [
    ({A: 1, B: 1, C: 1}, {A: 3334, B: 3333, C: 3333}),
    ({A: 5, B: 3, C: 1}, {A: 5556, B: 3333, C: 1111}),
    ({A: 1_000_000, B: 1}, {A: 10_000, B: 0}),
    ({A: 0, B: 7}, {B: 10_000}),
    ({A: 0, B: 0}, {}),
])
def test_the_documented_apportionments(scores: dict[bytes, int], expect: dict[bytes, int]) -> None:
    assert apportion(scores) == expect


def test_the_documented_records_example() -> None:
    accepted = {rec(1): A, rec(2): A, rec(3): B}
    scores = {rec(1): 600_000, rec(2): 150_000, rec(3): 250_000, rec(4): 5_000_000}
    shares = contributor_shares(scores, accepted)
    assert shares.bps() == {A: 7_500, B: 2_500}
    assert [(s.key, s.score) for s in shares.shares] == [(A, 750_000), (B, 250_000)]
    assert shares.total == 1_000_000 and shares.ignored == (rec(4),)
    assert record_shares(scores, accepted).bps() == {rec(1): 6_000, rec(3): 2_500, rec(2): 1_500}


def test_a_score_below_one_basis_point_is_listed_with_zero() -> None:
    shares = contributor_shares({rec(1): 1_000_000, rec(2): 1}, {rec(1): A, rec(2): B})
    assert [(s.key, s.bps) for s in shares.shares] == [(A, 10_000), (B, 0)]
    assert shares.bps() == {A: 10_000}


def test_all_zero_scores_give_no_shares() -> None:
    shares = contributor_shares({rec(1): 0, rec(2): 0, rec(9): 5}, {rec(1): A, rec(2): B})
    assert shares == Shares((), 0, (rec(9),))
    assert contributor_shares({}, {rec(1): A}) == Shares((), 0, ())


def test_the_documented_float_conversions() -> None:
    assert [to_fixed(x) for x in (0.75, 2.5e-6, 3.5e-6, 1e-7, -0.2, 0.0, -0.0)] == [750_000, 2, 4, 0, 0, 0, 0]
    assert to_fixed(np.float32(0.1)) == round(float(np.float32(0.1)) * 1e6) == 100_000
    assert fixed_scores({rec(1): 0.5, rec(2): -1.0}) == {rec(1): 500_000, rec(2): 0}
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(LedgerError) as err:
            to_fixed(bad)
        assert err.value.code is errors.BAD_ATTRIBUTION_SCORES
        with pytest.raises(LedgerError):
            to_fixed_many([1.0, bad])


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64) | st.floats(width=32,
                allow_nan=False, allow_infinity=False) | st.integers(-10**7, 10**7).map(lambda i: i / 2e6),
                max_size=40))
def test_the_vector_conversion_equals_the_scalar_rule(values: list[float]) -> None:
    finite = [v for v in values if math.isfinite(v * 1e6)]
    assert to_fixed_many(finite) == [to_fixed(v) for v in finite]
    assert all(f >= 0 for f in to_fixed_many(finite))


@pytest.mark.parametrize(("scores", "accepted"), [
    ({rec(1): -1}, {rec(1): A}),
    ({rec(1): True}, {rec(1): A}),
    ({rec(1): 1.0}, {rec(1): A}),
    ({b"short": 1}, {b"short": A}),
    ({rec(1): 1}, {rec(1): b"not an address"}),
])
def test_bad_scores_are_errors_not_drops(scores: dict[bytes, object], accepted: dict[bytes, bytes]) -> None:
    with pytest.raises(LedgerError) as err:
        contributor_shares(scores, accepted)  # type: ignore[arg-type]
    assert err.value.code is errors.BAD_ATTRIBUTION_SCORES


# ---- properties -----------------------------------------------------------------------------------------
ADDRESSES = [bytes([i]) * 20 for i in range(1, 8)]


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[bytes, int], dict[bytes, bytes]]:
    n = draw(st.integers(0, 30))
    score = st.integers(0, 10**9) | st.sampled_from([0, 0, 1, 3, 10**12])
    scores = {rec(i): draw(score) for i in range(n)}
    accepted = {rec(i): draw(st.sampled_from(ADDRESSES)) for i in range(n + 5) if draw(st.integers(0, 4))}
    return scores, accepted


def check(shares: Shares, totals: dict[bytes, int]) -> None:
    total = sum(totals.values())
    got = {s.key: s.bps for s in shares.shares}
    assert shares.total == total
    if total == 0:
        assert shares.shares == ()
        return
    assert sum(got.values()) == BPS
    assert set(got) == {k for k, v in totals.items() if v > 0}
    for k, bps in got.items():
        assert abs(bps * total - BPS * totals[k]) < total  # within one basis point of the exact share
    for a in got:
        for b in got:
            if totals[a] > totals[b]:
                assert got[a] >= got[b]


@settings(max_examples=300, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_contributor_shares_properties(case: tuple[dict[bytes, int], dict[bytes, bytes]], rnd: random.Random) -> None:
    scores, accepted = case
    shares = contributor_shares(scores, accepted)
    totals: dict[bytes, int] = {}
    for r, s in scores.items():
        if r in accepted:
            totals[accepted[r]] = totals.get(accepted[r], 0) + s
    check(shares, totals)
    assert shares.ignored == tuple(sorted(r for r in scores if r not in accepted))
    # the order of the inputs changes nothing
    shuffled = list(scores.items())
    rnd.shuffle(shuffled)
    members = list(accepted.items())
    rnd.shuffle(members)
    assert contributor_shares(dict(shuffled), dict(members)) == shares
    # records outside the accepted set never earn, whatever their score
    louder = {r: (s if r in accepted else s * 1000 + 10**15) for r, s in scores.items()}
    louder[rec(10_000)] = 10**18
    assert contributor_shares(louder, accepted).shares == shares.shares


@settings(max_examples=200, deadline=None)
@given(cases())
def test_record_shares_properties(case: tuple[dict[bytes, int], dict[bytes, bytes]]) -> None:
    scores, accepted = case
    shares = record_shares(scores, accepted)
    check(shares, {r: s for r, s in scores.items() if r in accepted})
    assert all(s.key in accepted for s in shares.shares)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.binary(min_size=1, max_size=4), st.integers(0, 10**6), max_size=12),
       st.integers(1, 10**6))
def test_apportion_any_total(weights: dict[bytes, int], units: int) -> None:
    out = apportion(weights, units)
    total = sum(weights.values())
    assert (sum(out.values()) == units) if total else out == {}
    for k, v in out.items():
        assert abs(v * total - units * weights[k]) < total
