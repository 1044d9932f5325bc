"""The runner over synthetic Datanets: recall and precision per gate, redaction, streaming and memory."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet.gates import GateConfig, GateRunner, NearDupIndex, OffTopicGate, check_records, record_hash
from ailedger.datanet.gates.pii import find_pii
from ailedger.datanet.gates.records import record_text
from ailedger.datanet.gates.verdict import DuplicateReason, Gate, SchemaReason
from ailedger.datanet.synth import SCHEMA, SynthRecord, generate
from ailedger.datanet.synth.score import score
from tests.test_gates_offtopic import bow_embed


@pytest.fixture(scope="module")
def truth() -> list[SynthRecord]:
    return list(generate(8000, seed=31))


def test_every_gate_on_a_synthetic_datanet(truth: list[SynthRecord]) -> None:
    warm = [record_text(t.record) for t in generate(3000, seed=99) if t.label == "honest"]
    centroid = OffTopicGate.from_accepted(bow_embed, warm)
    threshold = float(np.quantile(centroid.distances(warm), 0.998))  # the Datanet's own tail sets the limit
    offtopic = OffTopicGate(bow_embed, centroid.centroid, threshold)
    results = list(check_records((t.record for t in truth), GateConfig(schema=SCHEMA), offtopic=offtopic))
    assert [r.index for r in results] == list(range(len(truth)))
    s = score(zip(truth, results, strict=True))
    print({k: round(v, 4) for k, v in s.items()})  # shown with pytest -s: the figures the report quotes
    assert s["count_near_dup"] > 600 and s["count_pii"] > 120
    assert s["neardup_recall"] >= 0.95 and s["neardup_precision"] >= 0.95
    assert s["exact_recall"] == 1.0
    assert s["pii_recall"] >= 0.98 and s["pii_precision"] >= 0.95
    assert s["junk_caught"] >= 0.95
    assert s["offtopic_recall"] >= 0.9 and s["offtopic_precision"] >= 0.8
    assert s["lookalike_false_rejection"] < 0.02
    assert s["honest_false_rejection"] < 0.02


def test_results_do_not_depend_on_chunk_size(truth: list[SynthRecord]) -> None:
    part = [t.record for t in truth[:2500]]
    big = [r.verdicts for r in check_records(part, GateConfig(chunk_size=1000))]
    small = [r.verdicts for r in check_records(part, GateConfig(chunk_size=97))]
    assert big == small


def test_redact_policy_passes_cleaned_records(truth: list[SynthRecord]) -> None:
    leaks = [t for t in truth if t.label == "pii"][:60]
    results = list(check_records([t.record for t in leaks], GateConfig(pii_policy="redact")))
    for t, r in zip(leaks, results, strict=True):
        pii = [v for v in r.verdicts if v.gate == Gate.PII]
        assert len(pii) == 1 and pii[0].passed and pii[0].detail.startswith("redacted ")
        assert r.record_hash == record_hash(t.record) != r.stored_hash == record_hash(r.record)
        assert find_pii(record_text(r.record)) == [] and "[" in r.record["text"]
        assert all(v.gate != Gate.PII for v in r.failures)


def test_known_records_are_flagged_as_in_datanet(truth: list[SynthRecord]) -> None:
    accepted = [t.record for t in truth if t.label == "honest"][:500]
    index = NearDupIndex()
    index.add_many([record_hash(r) for r in accepted], index.signatures([record_text(r) for r in accepted]))
    again = [accepted[0], {**accepted[1], "text": accepted[1]["text"] + " Enjoy!"}, accepted[0]]
    results = list(check_records(again, known_hashes={record_hash(r) for r in accepted}, neardup_index=index))
    first = results[0].failures
    assert {(v.gate, v.reason) for v in first} == {(Gate.EXACT_DUPLICATE, DuplicateReason.IN_DATANET),
                                                   (Gate.NEAR_DUPLICATE, DuplicateReason.IN_DATANET)}
    assert [(v.gate, v.reason) for v in results[1].failures] == [(Gate.NEAR_DUPLICATE, DuplicateReason.IN_DATANET)]
    assert results[2].failures[0].reason == DuplicateReason.IN_DATANET
    assert len(index) == 500


def test_unreadable_records_get_schema_verdicts() -> None:
    cfg = GateConfig(schema=SCHEMA, max_record_bytes=400)
    rows: list[Any] = [["a list"], {"title": "t", "text": "x" * 500}, {"text": "no title here, but long enough"}, 7]
    results = list(check_records(rows, cfg))
    reasons = [[(v.gate, v.reason) for v in r.failures] for r in results]
    assert reasons[0] == [(Gate.SCHEMA, SchemaReason.NOT_OBJECT)]
    assert reasons[1] == [(Gate.SCHEMA, SchemaReason.TOO_LARGE)]
    assert reasons[2] == [(Gate.SCHEMA, SchemaReason.SCHEMA_MISMATCH)]
    assert "'title' is a required property" in results[2].failures[0].sentence()
    assert reasons[3] == [(Gate.SCHEMA, SchemaReason.NOT_OBJECT)]


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(LedgerError) as err:
        GateRunner(GateConfig(neardup_threshold=0.9), neardup_index=NearDupIndex(0.8))
    assert err.value.code is errors.BAD_GATE_CONFIG
    with pytest.raises(LedgerError):
        GateConfig(chunk_size=0)
    with pytest.raises(LedgerError):
        GateConfig(pii_policy="shrug")  # type: ignore[arg-type]


def test_input_is_read_lazily() -> None:
    endless = ({"text": f"note number {i} about roasting squash with sage and brown butter"} for i in itertools.count())
    first = list(itertools.islice(check_records(endless, GateConfig(chunk_size=50)), 120))
    assert [r.index for r in first] == list(range(120))


def _repeating(n: int) -> Iterator[dict[str, Any]]:
    """Fresh record objects, but only 50 distinct records: the duplicate state stays small, so any growth
    in memory would come from holding the input or the results."""
    base = [t.record for t in generate(300, seed=5) if t.label == "honest"][:50]
    for i in range(n):
        b = base[i % len(base)]
        yield {"title": b["title"], "text": b["text"] + ""}


def _peak(n: int) -> int:
    tracemalloc.start()
    try:
        for _ in check_records(_repeating(n), GateConfig(chunk_size=500)):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_input() -> None:
    small, large = _peak(2000), _peak(10000)
    # Holding 8,000 more records and results would add several megabytes; streaming adds nothing.
    assert large - small < 1_000_000, (small, large)


def test_duplicate_state_per_record_is_small(truth: list[SynthRecord]) -> None:
    index = NearDupIndex()
    honest = [t.record for t in truth if t.label == "honest"][:3000]
    index.add_many([record_hash(r) for r in honest], index.signatures([record_text(r) for r in honest]))
    assert index.nbytes / len(index) < 600  # vs. ~330 B of text per record: a fraction of the input
