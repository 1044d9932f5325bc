"""The payout rule: per-record influence and verbatim spans combined into contributor shares.

This is the one place where signals become money, so it is written down in full (docs/attribution.md,
"Combining the signals") and versioned as `METHOD`:

1. Span score of record i: every maximal span of the answer (at least `spans.MIN_SPAN` tokens) that
   occurs in the snapshot covers a fraction L / m of the answer (L its tokens, m the answer's); it is
   split evenly among the records that contain it, so a phrase that fifty records share is worth a
   fiftieth to each (boilerplate is not copying), while a passage only one record holds is worth all
   of its length to that record. A record's span score is the sum over the spans it contains.
2. Influence score of record i: the TRAK/TrackStar cosine from `influence.py`, in [-1, 1], with
   negative values (the record pushed the model away from the answer) taken as 0.
3. Combined score = influence + `SPAN_WEIGHT` * span: both lie in [0, 1] for the record that taught
   the answer, so neither can drown the other.
4. Only the records whose combined score is at least `FLOOR` times the best one, and at most `TOP_K`
   of them (highest first, ties to the earlier record in snapshot order), are paid. Why: influence
   is an estimate with a long tail of small positive cosines over the whole snapshot; paying that
   tail would hand a steady share of every fee to whoever gets the most records admitted (the
   keyword stuffer's strategy), whatever they taught. The floor keeps the payout with the records
   that stand out for this answer.
5. Each paid record's combined score becomes an integer by `fixedpoint.to_fixed`, and
   `shares.contributor_shares` apportions 10,000 basis points over the contributors of the accepted
   records (largest remainder).

A lexical or embedding retriever never enters this rule: a record that merely repeats the question's
words has neither a verbatim span of the answer nor a gradient that lines up with the answer's, so it
earns nothing here, whatever a retriever thinks of it (`bench attribution` measures this).

`shares_from_scores` applies steps 4 and 5 to any method's per-record scores, which is how the
benchmark compares methods under the same payout rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ailedger.attribution.fixedpoint import to_fixed
from ailedger.attribution.shares import Shares, contributor_shares, record_shares
from ailedger.attribution.spans import Span
from ailedger.core import errors
from ailedger.core.errors import LedgerError

METHOD = "ailedger/attribution/v1"
SPAN_WEIGHT = 1.0
FLOOR = 0.5  # paid records score at least this fraction of the best record's score
TOP_K = 16  # at most this many records are paid per answer

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Rule:
    """The rule's constants; an attribution record states the ones it was computed with."""

    span_weight: float = SPAN_WEIGHT
    floor: float = FLOOR
    top_k: int = TOP_K

    def to_json(self) -> dict[str, float | int]:
        return {"span_weight": self.span_weight, "floor": self.floor, "top_k": self.top_k}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Rule:
        try:
            rule = cls(float(doc["span_weight"]), float(doc["floor"]), int(doc["top_k"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerError(errors.ATTRIBUTION_INDEX_CORRUPT, f"bad attribution rule {dict(doc)}: {exc}") from exc
        if not (rule.span_weight >= 0 and 0 <= rule.floor <= 1 and rule.top_k >= 1):
            raise LedgerError(errors.ATTRIBUTION_INDEX_CORRUPT, f"attribution rule out of range: {rule.to_json()}")
        return rule


def span_scores(spans: Sequence[Span], answer_len: int, n_records: int) -> F64:
    """Step 1: each record's share of the answer's verbatim spans (snapshot order)."""
    out = np.zeros(n_records, np.float64)
    if answer_len <= 0:
        return out
    for span in spans:
        if span.record_count <= 0:
            continue
        weight = (span.end - span.start) / answer_len / span.record_count
        out[list(span.records)] += weight
    return out


def combined_scores(influence: F64, span: F64, rule: Rule = Rule()) -> F64:
    """Steps 2 and 3: clipped influence plus weighted span score, per record."""
    if influence.shape != span.shape:
        raise ValueError(f"{influence.shape} influence scores for {span.shape} span scores")
    return np.maximum(np.nan_to_num(influence, nan=0.0), 0.0) + rule.span_weight * span


def paid(scores: npt.NDArray[np.floating], rule: Rule = Rule()) -> list[int]:
    """Step 4: indices of the paid records, best first (ties to the earlier record)."""
    values = np.asarray(scores, np.float64)
    if not np.all(np.isfinite(values)):
        raise LedgerError(errors.BAD_ATTRIBUTION_SCORES, "a score is NaN or infinite")
    order = np.argsort(-values, kind="stable")[:rule.top_k]
    if not len(order) or values[order[0]] <= 0:
        return []
    bar = rule.floor * values[order[0]]
    return [int(i) for i in order if values[i] > 0 and values[i] >= bar]


def payable(record_hashes: Sequence[bytes], scores: npt.NDArray[np.floating], rule: Rule = Rule()) -> dict[bytes, int]:
    """Steps 4 and 5 up to the integers: fixed-point scores of the paid records, by record hash."""
    if len(record_hashes) != len(scores):
        raise ValueError(f"{len(scores)} scores for {len(record_hashes)} records")
    out = {record_hashes[i]: to_fixed(float(scores[i])) for i in paid(scores, rule)}
    return {h: v for h, v in out.items() if v > 0}


def shares_from_scores(record_hashes: Sequence[bytes], scores: npt.NDArray[np.floating],
                       accepted: Mapping[bytes, bytes], rule: Rule = Rule()) -> Shares:
    """The whole payout rule on any method's per-record scores: contributor shares in basis points."""
    return contributor_shares(payable(record_hashes, scores, rule), accepted)


def record_shares_from_scores(record_hashes: Sequence[bytes], scores: npt.NDArray[np.floating],
                              accepted: Mapping[bytes, bytes], rule: Rule = Rule()) -> Shares:
    """The same rule, per record rather than per contributor."""
    return record_shares(payable(record_hashes, scores, rule), accepted)
