"""The payout rule (combine.py): spans and influence combined, the floor and top-k, shares summing to 10,000."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.attribution.combine import (
    Rule,
    combined_scores,
    paid,
    payable,
    shares_from_scores,
    span_scores,
)
from ailedger.attribution.spans import Span
from ailedger.core.errors import LedgerError

scores_st = st.lists(st.floats(min_value=-1.0, max_value=2.0, allow_nan=False), min_size=1, max_size=60)
rule_st = st.builds(Rule, st.floats(0.0, 2.0), st.floats(0.0, 1.0), st.integers(1, 20))


@settings(max_examples=300, deadline=None)
@given(scores_st, rule_st)
def test_paid_records_stand_out(values: list[float], rule: Rule) -> None:
    scores = np.array(values)
    chosen = paid(scores, rule)
    best = float(scores.max())
    if best <= 0:
        assert chosen == []
        return
    assert chosen[0] == int(np.argmax(scores))  # the best record is always paid (first of equals)
    assert len(chosen) <= rule.top_k and len(set(chosen)) == len(chosen)
    assert all(scores[i] > 0 and scores[i] >= rule.floor * best for i in chosen)
    assert [scores[i] for i in chosen] == sorted((scores[i] for i in chosen), reverse=True)
    left_out = [i for i in range(len(scores)) if i not in chosen]
    if len(chosen) < rule.top_k:  # nothing above the floor was left out
        assert all(scores[i] < rule.floor * best or scores[i] <= 0 for i in left_out)


@settings(max_examples=200, deadline=None)
@given(scores_st, st.integers(1, 5))
def test_shares_sum_to_whole_over_contributors(values: list[float], owners: int) -> None:
    hashes = [bytes([i]) * 32 for i in range(len(values))]
    accepted = {h: bytes([i % owners]) * 20 for i, h in enumerate(hashes)}
    shares = shares_from_scores(hashes, np.array(values), accepted)
    total = sum(s.bps for s in shares.shares)
    assert total in (0, 10_000)
    assert (total == 0) == (not payable(hashes, np.array(values)))
    # order of the records changes nothing but ties
    perm = np.random.default_rng(len(values)).permutation(len(values))
    again = shares_from_scores([hashes[i] for i in perm], np.array(values)[perm], accepted)
    if len(set(values)) == len(values):
        assert again.bps() == shares.bps()


def test_records_outside_the_snapshot_never_earn() -> None:
    hashes = [bytes([i]) * 32 for i in range(3)]
    accepted = {hashes[0]: b"\x01" * 20, hashes[1]: b"\x02" * 20}  # record 2 is not an accepted record
    shares = shares_from_scores(hashes, np.array([0.6, 0.5, 0.9]), accepted)
    assert shares.bps() == {b"\x01" * 20: 5455, b"\x02" * 20: 4545} and shares.ignored == (hashes[2],)


def test_span_scores_split_a_span_among_its_records() -> None:
    spans = [Span(0, 8, tuple(range(8)), (0,), 1, 1), Span(8, 12, tuple(range(4)), (1, 2), 2, 3)]
    out = span_scores(spans, 16, 4)
    assert out.tolist() == [0.5, 0.125, 0.125, 0.0]
    assert span_scores(spans, 0, 4).tolist() == [0.0] * 4


def test_combined_clips_negative_influence() -> None:
    out = combined_scores(np.array([-0.5, 0.2, 0.0]), np.array([0.25, 0.0, 0.5]), Rule(span_weight=2.0))
    assert out.tolist() == [0.5, 0.2, 1.0]
    with pytest.raises(ValueError):
        combined_scores(np.zeros(2), np.zeros(3))


def test_non_finite_scores_refused() -> None:
    with pytest.raises(LedgerError) as exc:
        paid(np.array([0.2, np.nan]))
    assert exc.value.code.name == "bad_attribution_scores"


def test_rule_from_json_checks_ranges() -> None:
    assert Rule.from_json(Rule().to_json()) == Rule()
    for bad in ({"span_weight": 1, "floor": 2, "top_k": 3}, {"span_weight": 1, "floor": 0.5}, {"span_weight": "x"}):
        with pytest.raises(LedgerError):
            Rule.from_json(bad)
