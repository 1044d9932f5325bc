"""Verbatim spans: a suffix-array index over a snapshot's tokens, checked against brute force."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.attribution.spans import MAGIC, TAG, Span, SpanIndex, _body, _root
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import tagged
from ailedger.core.merkle import merkle_root


def ids(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


def index(records: list[list[int]], tokenizer: str = "tok") -> SpanIndex:
    return SpanIndex.build(records, ids(len(records)), tokenizer)


# ---- brute force ----------------------------------------------------------------------------------------
def occurrences(records: list[list[int]], pattern: list[int]) -> list[int]:
    """The record index of every (overlapping) occurrence of `pattern`."""
    k = len(pattern)
    return [r for r, rec in enumerate(records) for i in range(len(rec) - k + 1) if rec[i:i + k] == pattern]


Found = list[tuple[int, int, int, tuple[int, ...]]]


def naive_spans(records: list[list[int]], answer: list[int], min_len: int) -> Found:
    """Every interval of the answer that occurs, minus those strictly inside another: O(m^2) searches."""
    found = [(s, e) for s in range(len(answer)) for e in range(s + 1, len(answer) + 1)
             if occurrences(records, answer[s:e])]
    maximal = [(s, e) for s, e in found if not any(a <= s and e <= b and (a, b) != (s, e) for a, b in found)]
    out = []
    for s, e in sorted(maximal):
        if e - s >= min_len:
            occ = occurrences(records, answer[s:e])
            out.append((s, e, len(occ), tuple(sorted(set(occ)))))
    return out


def summary(spans: list[Span]) -> Found:
    return [(sp.start, sp.end, sp.count, sp.records) for sp in spans]


# ---- known cases ----------------------------------------------------------------------------------------
def test_finds_the_copied_stretches_with_their_records() -> None:
    records = [list(range(1, 11)), [5, 6, 7, 8, 9, 10, 11, 12], [20, 21, 22], list(range(1, 11))]
    ix = index(records)
    answer = [0, *range(1, 13), 20, 21]
    spans = ix.find(answer, min_len=3)
    assert summary(spans) == [(1, 11, 2, (0, 3)), (5, 13, 1, (1,))]
    assert spans[0].tokens == tuple(range(1, 11)) and spans[0].record_count == 2
    assert ix.span_records(spans[1]) == [ids(4)[1]]
    assert ix.match_lengths(answer).tolist() == [0, 10, 9, 8, 7, 8, 7, 6, 5, 4, 3, 2, 1, 2, 1]
    assert ix.find(answer) == [spans[0], spans[1]]  # both are at least 8 tokens
    assert ix.find(answer, min_len=9) == [spans[0]]


def test_a_span_never_crosses_a_record_boundary() -> None:
    ix = index([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
    answer = list(range(1, 11))
    assert ix.find(answer, min_len=2) == [
        Span(0, 5, (1, 2, 3, 4, 5), (0,), 1, 1), Span(5, 10, (6, 7, 8, 9, 10), (1,), 1, 1)]
    assert ix.find(answer, min_len=6) == []
    assert ix.match_lengths([5, 6]).tolist() == [1, 1]


def test_ids_the_snapshot_cannot_hold_end_a_match() -> None:
    ix = index([[1, 2, 3, 4]])
    assert ix.sentinel == 5
    assert ix.match_lengths([1, 2, 5, 3, 4, 99]).tolist() == [2, 1, 0, 2, 1, 0]


def test_wide_vocabularies_use_32_bit_tokens() -> None:
    big = [70_000 + i for i in range(10)]
    ix = index([[1, 2, *big], big[:5]])
    assert ix.tokens.dtype == np.dtype("<u4")
    assert summary(ix.find([9, *big, 3], min_len=4)) == [(1, 11, 1, (0,))]


def test_records_listed_are_capped_but_counts_are_not() -> None:
    ix = index([[1, 2, 3, 1, 2, 3]] * 5)
    (span,) = ix.find([1, 2, 3, 1, 2, 3], min_len=3, max_records=2)
    assert (span.records, span.record_count, span.count) == ((0, 1), 5, 5)
    (short,) = ix.find([7, 1, 2, 3, 7], min_len=3)
    assert short.count == 10


def test_bad_input_gets_its_code() -> None:
    ix = index([[1, 2, 3]])
    with pytest.raises(LedgerError) as err:
        ix.find([])
    assert err.value.code is errors.EMPTY_ANSWER
    for bad in ([-1, 2], [1.5, 2.0], [[1, 2]]):
        with pytest.raises(LedgerError) as err:
            ix.find(bad)  # type: ignore[arg-type]
        assert err.value.code is errors.BAD_TOKEN_IDS
    with pytest.raises(LedgerError) as err:
        SpanIndex.build([[1, 2], [2**31]], ids(2))
    assert err.value.code is errors.BAD_TOKEN_IDS
    with pytest.raises(LedgerError):
        SpanIndex.build([[1, 2]], ids(2))


def test_empty_snapshots_and_records() -> None:
    assert SpanIndex.build([], []).find([1, 2, 3], min_len=1) == []
    ix = index([[], [4, 5], []])
    assert summary(ix.find([4, 5], min_len=2)) == [(0, 2, 1, (1,))]


# ---- against brute force --------------------------------------------------------------------------------
corpora = st.lists(st.lists(st.integers(0, 3), max_size=12), max_size=6)


@settings(max_examples=150, deadline=None)
@given(records=corpora, answer=st.lists(st.integers(0, 5), min_size=1, max_size=14), min_len=st.integers(1, 4),
       data=st.data())
def test_spans_equal_a_brute_force_search(records: list[list[int]], answer: list[int], min_len: int,
                                          data: st.DataObject) -> None:
    if records and data.draw(st.booleans()):  # splice a stretch of a record into the answer
        rec = records[data.draw(st.integers(0, len(records) - 1))]
        a = data.draw(st.integers(0, len(rec)))
        b = data.draw(st.integers(a, len(rec)))
        cut = data.draw(st.integers(0, len(answer)))
        answer = answer[:cut] + rec[a:b] + answer[cut:]
    ix = index(records)
    tokens = ix.tokens.astype(np.int64).tolist()
    assert ix.sa.tolist() == sorted(range(len(tokens)), key=lambda i: tokens[i:])
    assert summary(ix.find(answer, min_len=min_len)) == naive_spans(records, answer, min_len)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_long_copies_in_a_repetitive_corpus_equal_brute_force(seed: int) -> None:
    """Matches far longer than one compared chunk (32 tokens), over a 3-letter alphabet full of repeats."""
    rng = np.random.default_rng(seed)
    records = [rng.integers(0, 3, int(rng.integers(0, 300))).tolist() for _ in range(8)]
    source = max(records, key=len)
    answer = [*rng.integers(0, 4, 30).tolist(), *source[20:160], *rng.integers(0, 4, 30).tolist()]
    text = [bytes(r) for r in records]
    longest = [max(n for n in range(len(answer) - s + 1) if any(bytes(answer[s:s + n]) in t for t in text))
               for s in range(len(answer))]
    ends = [s + n for s, n in enumerate(longest)]
    expect = [(s, e) for s, e in enumerate(ends) if e - s >= 12 and all(e > ends[j] for j in range(s))]
    spans = index(records).find(answer, min_len=12)
    assert [(sp.start, sp.end) for sp in spans] == expect
    assert max(sp.end - sp.start for sp in spans) >= 140
    for sp in spans:
        pattern = list(sp.tokens)
        assert sp.count == len(occurrences(records, pattern)) and sp.tokens == tuple(answer[sp.start:sp.end])


# ---- persistence ----------------------------------------------------------------------------------------
def test_save_and_load_round_trip(tmp_path: Path) -> None:
    records = [[1, 2, 3, 4, 5, 6, 7, 8, 9], [3, 4, 5, 6, 7, 8, 9, 10, 11], [2, 3]]
    ix = index(records)
    again = index(records)
    assert again.root == ix.root  # the build is deterministic: anyone can rebuild and compare
    assert ix.root == tagged(TAG, b"".join(_body(ix.tokens, ix.sa, ix.offsets, ix.record_ids, ix.tokenizer)))
    assert ix.snapshot_root == merkle_root(ids(3))
    path = tmp_path / "spans.idx"
    ix.save(path)
    loaded = SpanIndex.load(path, snapshot_root=merkle_root(ids(3)), tokenizer="tok", root=ix.root)
    assert loaded.root == ix.root and loaded.record_ids == ix.record_ids and loaded.sentinel == ix.sentinel
    assert (loaded.tokens == ix.tokens).all() and (loaded.sa == ix.sa).all()
    answer = [0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert loaded.find(answer, min_len=3) == ix.find(answer, min_len=3) != []
    assert not list(tmp_path.glob("*.partial"))


def test_another_snapshot_tokenizer_or_root_is_refused(tmp_path: Path) -> None:
    ix = index([[1, 2, 3, 4]])
    path = tmp_path / "spans.idx"
    ix.save(path)
    for kwargs in ({"snapshot_root": merkle_root(ids(2))}, {"tokenizer": "other"}, {"root": bytes(32)}):
        with pytest.raises(LedgerError) as err:
            SpanIndex.load(path, **kwargs)  # type: ignore[arg-type]
        assert err.value.code is errors.ATTRIBUTION_INDEX_MISMATCH


def corrupt_code(path: Path) -> errors.ErrorCode:
    with pytest.raises(LedgerError) as err:
        SpanIndex.load(path)
    return err.value.code


def test_damaged_or_truncated_files_are_refused(tmp_path: Path) -> None:
    ix = index([[1, 2, 3, 4, 5, 6], [4, 5, 6, 7]])
    good = tmp_path / "good.idx"
    ix.save(good)
    data = good.read_bytes()
    bad = tmp_path / "bad.idx"
    for at in (0, len(MAGIC), len(MAGIC) + 33, len(MAGIC) + 40, len(data) // 2, len(data) - 1):
        bad.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:])
        assert corrupt_code(bad) is errors.ATTRIBUTION_INDEX_CORRUPT, at
    for keep in (0, 5, len(MAGIC) + 20, len(data) - 1):
        bad.write_bytes(data[:keep])
        assert corrupt_code(bad) is errors.ATTRIBUTION_INDEX_CORRUPT, keep
    bad.write_bytes(data + b"\0")
    assert corrupt_code(bad) is errors.ATTRIBUTION_INDEX_CORRUPT
    with pytest.raises(LedgerError) as err:
        SpanIndex.load(tmp_path / "missing.idx")
    assert err.value.code is errors.FILE_UNREADABLE


def test_a_well_hashed_file_with_a_wrong_suffix_array_is_refused(tmp_path: Path) -> None:
    ix = index([[1, 2, 3], [3, 4]])
    sa = ix.sa.copy()
    sa[0] = sa[1]
    forged = SpanIndex(ix.tokens, sa, ix.offsets, ix.record_ids, ix.tokenizer,
                       _root(_body(ix.tokens, sa, ix.offsets, ix.record_ids, ix.tokenizer)))
    forged.save(tmp_path / "forged.idx")
    assert corrupt_code(tmp_path / "forged.idx") is errors.ATTRIBUTION_INDEX_CORRUPT


# ---- scale ----------------------------------------------------------------------------------------------
def test_a_million_tokens_build_and_query_in_seconds(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    records = [np.minimum(rng.zipf(1.2, 100), 49_151) for _ in range(10_000)]  # 1.0M tokens, text-like ids
    start = time.perf_counter()
    ix = SpanIndex.build(records, ids(len(records)), "tok")
    built = time.perf_counter() - start
    copied = records[4321][10:60].tolist()
    answer = [49_999, *copied, 49_998]
    start = time.perf_counter()
    spans = ix.find(answer)
    asked = time.perf_counter() - start
    assert len(ix.tokens) == 1_010_000
    assert any(sp.start == 1 and sp.end == 51 and 4321 in sp.records for sp in spans)
    path = tmp_path / "big.idx"
    ix.save(path)
    assert SpanIndex.load(path, snapshot_root=ix.snapshot_root).root == ix.root
    assert built < 6 and asked < 1, (built, asked)  # about 0.3 s and 3 ms here
