"""The synthetic Datanet generator: seeded, streamed, fast, with the mix and the ground truth it promises."""

from __future__ import annotations

import itertools
import time
from collections import Counter

import numpy as np
import pytest

from ailedger.datanet.gates.checksums import luhn_valid
from ailedger.datanet.gates.pii import find_pii
from ailedger.datanet.gates.records import canonical_record, record_text
from ailedger.datanet.gates.schema import SchemaGate
from ailedger.datanet.synth import LABELS, SCHEMA, SynthMix, SynthRecord, generate, pair_jaccard


@pytest.fixture(scope="module")
def records() -> list[SynthRecord]:
    return list(generate(20000, seed=42))


def test_same_seed_same_stream_and_other_seed_other_stream() -> None:
    a = [(r.record, r.label, r.contributor) for r in generate(1500, seed=1)]
    b = [(r.record, r.label, r.contributor) for r in generate(1500, seed=1)]
    c = [(r.record, r.label, r.contributor) for r in generate(1500, seed=2)]
    assert a == b and a != c
    assert [r.record for r in generate(700, seed=1)] == [r for r, _, _ in a[:700]]  # a prefix of the same stream


def test_streams_lazily() -> None:
    first = list(itertools.islice(generate(10**9, seed=3), 5))
    assert len(first) == 5


def test_default_mix(records: list[SynthRecord]) -> None:
    counts = Counter(r.label for r in records)
    assert set(counts) == set(LABELS)
    share = {k: v / len(records) for k, v in counts.items()}
    for label, expected in (("near_dup", 0.10), ("pii", 0.02), ("pii_lookalike", 0.02), ("off_topic", 0.02),
                            ("exact_dup", 0.02), ("junk", 0.02)):
        assert abs(share[label] - expected) < expected * 0.25, (label, share[label])
    cooks = {r.contributor for r in records if r.label == "honest"}
    assert cooks == {f"cook-{i}" for i in range(1, 6)}
    assert {r.contributor for r in records if r.label in ("near_dup", "exact_dup")} == {"spammer"}
    assert {r.contributor for r in records if r.label == "pii"} == {"leaker"}


def test_custom_mix() -> None:
    mix = SynthMix(near_dup=0.0, exact_dup=0.0, pii=0.5, pii_lookalike=0.0, off_topic=0.0, junk=0.0)
    counts = Counter(r.label for r in generate(2000, seed=5, mix=mix))
    assert set(counts) == {"honest", "pii"} and 900 < counts["pii"] < 1100
    with pytest.raises(ValueError):
        SynthMix(near_dup=0.95)


def test_records_match_the_schema_and_read_like_notes(records: list[SynthRecord]) -> None:
    gate = SchemaGate(SCHEMA)
    assert all(gate.check(r.record, len(canonical_record(r.record))) is None for r in records)
    honest = [len(record_text(r.record)) for r in records if r.label == "honest"]
    assert 250 < float(np.mean(honest)) < 420  # about 300 characters, like the benchmark asks


def test_copies_point_at_earlier_honest_records(records: list[SynthRecord]) -> None:
    copies = [(i, r) for i, r in enumerate(records) if r.label in ("near_dup", "exact_dup")]
    assert copies
    for i, r in copies:
        assert r.source_index is not None and r.source_index < i
        assert records[r.source_index].label == "honest"
        if r.label == "exact_dup":
            assert canonical_record(r.record) == canonical_record(records[r.source_index].record)


def test_near_copies_are_close_but_not_identical(records: list[SynthRecord]) -> None:
    near = [r for r in records if r.label == "near_dup"]
    sources = [records[r.source_index].record for r in near if r.source_index is not None]
    jac = pair_jaccard([record_text(s) for s in sources], [record_text(r.record) for r in near])
    assert jac.min() >= 0.85 and float(jac.mean()) > 0.9
    assert all(canonical_record(r.record) != canonical_record(s) for r, s in zip(near, sources, strict=True))


def test_honest_records_are_not_near_copies_of_each_other(records: list[SynthRecord]) -> None:
    honest = [record_text(r.record) for r in records if r.label == "honest"][:2000]
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(honest), 3000), rng.integers(0, len(honest), 3000)
    keep = i != j
    jac = pair_jaccard([honest[k] for k in i[keep]], [honest[k] for k in j[keep]])
    assert float(np.quantile(jac, 0.999)) < 0.5


def test_pair_jaccard_is_exact() -> None:
    a = "the quick brown fox jumps"
    b = "the quick brown fox leaps"
    sa = {a[i:i + 5] for i in range(len(a) - 4)}
    sb = {b[i:i + 5] for i in range(len(b) - 4)}
    assert pair_jaccard([a, "", "abc"], [b, "", "abc"]).tolist() == [len(sa & sb) / len(sa | sb), 1.0, 1.0]
    assert pair_jaccard([], []).shape == (0,)


def test_pii_is_real_and_lookalikes_are_not(records: list[SynthRecord]) -> None:
    pii = [r for r in records if r.label == "pii"]
    assert {r.kind for r in pii} == {"email", "phone", "card", "iban", "api_key", "private_key"}
    assert all(find_pii(r.record["text"]) for r in pii)
    looks = [r for r in records if r.label == "pii_lookalike"]
    assert {r.kind for r in looks} == {"date", "time", "version", "order_number", "uuid", "ip_version",
                                       "short_digits"}
    assert not any(find_pii(r.record["text"]) for r in looks)
    orders = [r for r in looks if r.kind == "order_number"]
    for r in orders:
        digits = "".join(ch for ch in r.record["text"].split("order number ")[1].split(",")[0] if ch.isdigit())
        assert len(digits) == 16 and not luhn_valid(digits)


def test_generation_is_fast() -> None:
    start = time.process_time()
    n = sum(1 for _ in generate(30000, seed=8))
    rate = n / max(time.process_time() - start, 1e-9)
    print(f"synth: {rate:,.0f} records/s")
    assert rate > 20000  # about 50,000 on an idle core; the bound leaves room for a busy machine
