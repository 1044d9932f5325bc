"""Scores of gate results against the synthetic ground truth: what the tests and the benchmark report.

Why one scorer: recall and precision are easy to define slightly differently in two places, and then
the benchmark's numbers and the tests' thresholds stop meaning the same thing. Definitions: a gate
"flags" a record when one of its verdicts fails it (a redaction passes, but still counts as a PII
finding). Near-duplicate precision counts exact copies as correct (an exact copy is also a near one).
Off-topic recall and precision count records that no other gate rejected: junk is far from every
topic too, and it is already caught.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ailedger.datanet.gates.runner import RecordResult
from ailedger.datanet.gates.verdict import Gate
from ailedger.datanet.synth import SynthRecord


def _ratio(num: int, den: int) -> float:
    return num / den if den else 1.0


def score(pairs: Iterable[tuple[SynthRecord, RecordResult]]) -> dict[str, float]:
    """Counts and rates over (truth, result) pairs; rates are 1.0 when nothing was there to find."""
    labels: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    for truth, result in pairs:
        labels[truth.label] += 1
        failed = {v.gate for v in result.failures}
        pii_found = any(v.gate == Gate.PII for v in result.verdicts)
        near = Gate.NEAR_DUPLICATE in failed
        hits["near_flagged"] += near
        hits["near_correct"] += near and truth.label in ("near_dup", "exact_dup")
        hits["near_found"] += near and truth.label == "near_dup"
        hits["exact_flagged"] += Gate.EXACT_DUPLICATE in failed
        hits["exact_correct"] += Gate.EXACT_DUPLICATE in failed and truth.label == "exact_dup"
        hits["pii_flagged"] += pii_found
        hits["pii_correct"] += pii_found and truth.label == "pii"
        only_off = failed == {Gate.OFF_TOPIC}
        hits["off_flagged"] += only_off
        hits["off_correct"] += only_off and truth.label == "off_topic"
        hits["rejected_" + truth.label] += not result.passed
    return {
        "records": sum(labels.values()),
        **{f"count_{k}": v for k, v in sorted(labels.items())},
        "neardup_recall": _ratio(hits["near_found"], labels["near_dup"]),
        "neardup_precision": _ratio(hits["near_correct"], hits["near_flagged"]),
        "exact_recall": _ratio(hits["exact_correct"], labels["exact_dup"]),
        "exact_precision": _ratio(hits["exact_correct"], hits["exact_flagged"]),
        "pii_recall": _ratio(hits["pii_correct"], labels["pii"]),
        "pii_precision": _ratio(hits["pii_correct"], hits["pii_flagged"]),
        "offtopic_recall": _ratio(hits["off_correct"], labels["off_topic"]),
        "offtopic_precision": _ratio(hits["off_correct"], hits["off_flagged"]),
        "junk_caught": _ratio(hits["rejected_junk"], labels["junk"]),
        "lookalike_false_rejection": _ratio(hits["rejected_pii_lookalike"], labels["pii_lookalike"])
        if labels["pii_lookalike"] else 0.0,
        "honest_false_rejection": _ratio(hits["rejected_honest"], labels["honest"]) if labels["honest"] else 0.0,
    }
