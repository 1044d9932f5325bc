"""Beta reputation: decay toward the prior, monotone effects, integers only, determinism."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.chain.state import State
from ailedger.modules import default_runtime
from ailedger.reputation import module as reputation
from ailedger.reputation.beta import CAP, PRIOR, SCALE, Beta, decay_excess, decayed, score_bps
from ailedger.reputation.module import Role
from tests.conftest import key

HALF = 100
A = key(1).address


def fresh(half_life: int = HALF) -> State:
    from ailedger.chain.genesis import Genesis

    state = default_runtime().genesis_state(Genesis("rep", 0, key(99).public_key, [],
                                                    {"reputation_half_life_blocks": half_life}))
    state.commit()
    return state


def test_prior_is_half_and_absent_key_reads_as_prior() -> None:
    state = fresh()
    assert reputation.score_bps(state, A, Role.CONTRIBUTOR, 10**9) == 5_000
    assert reputation.get(state, A, Role.VALIDATOR, 5) == Beta(PRIOR, PRIOR, 5)


def test_whole_half_lives_halve_the_excess_exactly() -> None:
    assert decay_excess(8 * SCALE, HALF, HALF) == 4 * SCALE
    assert decay_excess(8 * SCALE, 3 * HALF, HALF) == SCALE
    assert decay_excess(8 * SCALE, HALF // 2, HALF) == 6 * SCALE  # chord: 1 - 1/4 at half a half-life
    assert decay_excess(8 * SCALE, 64 * HALF, HALF) == 0
    assert decay_excess(0, 10, HALF) == 0 and decay_excess(5, 0, HALF) == 5


@settings(max_examples=300, deadline=None)
@given(excess=st.integers(0, CAP), t1=st.integers(0, 10**6), t2=st.integers(0, 10**6), h=st.integers(1, 10**5))
def test_decay_never_grows_and_is_monotone_in_time(excess: int, t1: int, t2: int, h: int) -> None:
    a, b = sorted((t1, t2))
    da, db = decay_excess(excess, a, h), decay_excess(excess, b, h)
    assert 0 <= db <= da <= excess
    assert type(da) is int
    # never faster than exact decay 2^(-t/h), never slower than the chord allows
    exact = excess * 2 ** (-b / h)
    assert db > exact * (1 - 1e-12) - 2  # two floors lose less than one unit each
    assert db <= Fraction(excess, 2 ** (b // h)) * Fraction(2 * h - b % h, 2 * h)


@settings(max_examples=200, deadline=None)
@given(events=st.lists(st.tuples(st.booleans(), st.integers(0, 5_000), st.integers(0, 10 * SCALE)), max_size=30))
def test_scores_stay_in_range_and_replay_identically(events: list[tuple[bool, int, int]]) -> None:
    runs = []
    for _ in range(2):
        state = fresh()
        height, trace = 0, []
        for good, gap, weight in events:
            height += gap
            before = reputation.score_bps(state, A, Role.CONTRIBUTOR, height)
            b = reputation.record_outcome(state, A, Role.CONTRIBUTOR, good, height, weight)
            after = b.score_bps()
            assert 0 <= after <= 10_000
            assert (after >= before) if good else (after <= before)  # evidence moves the score its way
            assert b.alpha >= PRIOR and b.beta >= PRIOR
            trace.append((b, after))
        state.commit()
        runs.append((trace, state.root()))
    assert runs[0] == runs[1]


def test_score_decays_back_toward_half() -> None:
    state = fresh()
    reputation.record_outcome(state, A, Role.MODEL_BUILDER, True, 0)
    assert [reputation.score_bps(state, A, Role.MODEL_BUILDER, h) for h in (0, HALF)] == [6_666, 6_000]  # docs example
    for h in range(10):
        reputation.record_outcome(state, A, Role.VALIDATOR, True, h)
    high = reputation.score_bps(state, A, Role.VALIDATOR, 10)
    later = [reputation.score_bps(state, A, Role.VALIDATOR, 10 + k * HALF) for k in (1, 2, 5, 70)]
    assert high > later[0] > later[1] > later[2] > later[3] == 5_000
    reputation.record_outcome(state, A, Role.CONTRIBUTOR, False, 10)
    assert reputation.score_bps(state, A, Role.CONTRIBUTOR, 10) < 5_000
    assert reputation.score_bps(state, A, Role.VALIDATOR, 10) == high  # roles are separate


def test_reading_never_writes_and_saturates_at_cap() -> None:
    state = fresh()
    reputation.record_outcome(state, A, Role.AGENT, True, 1, CAP)
    state.commit()
    root = state.root()
    assert reputation.score_bps(state, A, Role.AGENT, 10**9) == 5_000
    assert reputation.to_json(state, A, 10**9)["roles"]["agent"]["last_height"] == 1
    assert state.root() == root  # nothing pending: commit would refuse otherwise
    b = reputation.record_outcome(state, A, Role.AGENT, True, 1, CAP)
    assert b.alpha == CAP and score_bps(CAP, PRIOR) == 9_999
    assert decayed(b, 0, HALF) == b  # asking for an earlier height changes nothing
