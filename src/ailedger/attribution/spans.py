"""Verbatim spans: the stretches of an answer that occur word for word in training records.

This is the OLMoTrace signal (what a model copied, as opposed to what it learned): every maximal span
of the answer, at least `MIN_SPAN` tokens long, that occurs inside some record of the adapter's
snapshot, with the records that contain it. It needs no model, only the same tokenizer on both sides,
so anyone holding the snapshot can recompute it exactly.

Why a suffix array over token ids: the records are concatenated, each followed by one sentinel token
(one more than the largest id in the snapshot), and the sorted suffixes of that array answer "the
longest prefix of this text that occurs anywhere" by binary search, in O(m log N) comparisons for an
answer of m tokens over N snapshot tokens, with every occurrence of a span in one contiguous range.
Answer tokens never equal the sentinel (an id at or above it cannot occur in the snapshot and ends a
match), so no match crosses a record boundary; one sentinel value rather than one per record keeps
the alphabet, and so the sort, at 16 bits for vocabularies below 65,535 ids.

Why `pydivsufsort` (libdivsufsort, C) to build it: it sorts integer arrays by sorting their big-endian
bytes and keeping the aligned suffixes, which is exact for fixed-width tokens. On 1M Zipf-distributed
16-bit tokens here it took 0.24 s with or without long copied passages, against 2.0 s (5.1 s with the
copies) for a NumPy prefix-doubling sort (argsort/lexsort, O(N log^2 N)) that returned the same array.

Why the queries are vectorised: all m start positions walk down the suffix array together (one
binary-search step for all of them at a time), comparing 32-token chunks gathered with NumPy, so an
answer costs about log2(N) array operations, not m*log2(N) Python-level comparisons.

The index file (`save`/`load`) is `MAGIC || root || body`, where body is a 4-byte little-endian
header length, the canonical JSON header, then the token array, the suffix array, the record offsets
(<i8) and the 32-byte record hashes, and root = `core.hashing.tagged(b"span-index", body)`. The root
is what gets published with the adapter; a file whose body does not hash to it is refused whole.
The build is deterministic (a suffix array is unique), so anyone can rebuild it and compare roots.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydivsufsort import divsufsort

from ailedger.chain.files import atomic_write
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.merkle import merkle_root

MIN_SPAN = 8  # tokens: shorter shared runs are common phrases, not copying
MAX_RECORDS = 64  # distinct records listed per span (the count of occurrences is always exact)
MAX_TOKEN = 2**31 - 2  # so that the sentinel fits a signed 32-bit id
MAGIC = b"AILSPAN\x01"
TAG = b"span-index"
FORMAT = 1
_CHUNK = 32  # tokens compared per gather while walking the suffix array
_LOW = -1  # query terminator below every snapshot token: "the shortest suffix that starts with this"
_HIGH = 1 << 40  # query terminator above every snapshot token: "past every suffix that starts with this"
_LEN = struct.Struct("<I")
_TOKEN_DTYPES: dict[str, np.dtype[Any]] = {"<u2": np.dtype("<u2"), "<u4": np.dtype("<u4")}
_SA_DTYPES: dict[str, np.dtype[Any]] = {"<i4": np.dtype("<i4"), "<i8": np.dtype("<i8")}

I64 = npt.NDArray[np.int64]
Tokens = Sequence[int] | npt.NDArray[np.integer[Any]]


@dataclass(frozen=True)
class Span:
    """Answer tokens [start, end) found verbatim in the snapshot."""

    start: int
    end: int
    tokens: tuple[int, ...]
    records: tuple[int, ...]  # indices into `SpanIndex.record_ids`, ascending, at most `max_records`
    record_count: int  # distinct records that contain the span (`records` may be cut short)
    count: int  # occurrences in the whole snapshot, overlapping ones included


def _as_ids(values: Tokens, what: str) -> I64:
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise LedgerError(errors.BAD_TOKEN_IDS, f"{what} is not a flat list of integers")
    if int(arr.min()) < 0 or int(arr.max()) > MAX_TOKEN:
        raise LedgerError(errors.BAD_TOKEN_IDS, f"{what} holds an id outside 0..{MAX_TOKEN}")
    return arr.astype(np.int64)


class SpanIndex:
    """A snapshot's records as one sentinel-separated token array and its suffix array."""

    def __init__(self, tokens: npt.NDArray[Any], sa: npt.NDArray[Any], offsets: I64, record_ids: Sequence[bytes],
                 tokenizer: str, root: bytes) -> None:
        self.tokens = tokens  # record r is tokens[offsets[r]:offsets[r+1]-1], then the sentinel
        self.sa = sa
        self.offsets = offsets
        self.record_ids = tuple(record_ids)
        self.tokenizer = tokenizer
        self.root = root
        self.sentinel = int(tokens.max()) if len(tokens) else 0
        self.snapshot_root = merkle_root(self.record_ids)

    # ---- build -------------------------------------------------------------------------------------
    @classmethod
    def build(cls, records: Sequence[Tokens], record_ids: Sequence[bytes], tokenizer: str = "") -> SpanIndex:
        """Index `records` (token ids, in snapshot order) under their record hashes.

        `record_ids` are the snapshot's record hashes in its order, so that their Merkle root is the
        snapshot root; a record with no text is an empty list. `tokenizer` names the tokenizer (for
        example a hash of its files) so that an answer is never matched under another one.
        """
        if len(records) != len(record_ids) or any(len(r) != 32 for r in record_ids):
            raise LedgerError(errors.BAD_TOKEN_IDS, f"{len(records)} token lists for {len(record_ids)} record "
                                                    "hashes (each 32 bytes)")
        arrays = [_as_ids(r, f"record {i}") for i, r in enumerate(records)]
        sentinel = max((int(a.max()) for a in arrays if a.size), default=-1) + 1
        offsets = np.zeros(len(arrays) + 1, np.int64)
        np.cumsum([a.size + 1 for a in arrays], out=offsets[1:])
        dtype = np.dtype("<u2") if sentinel <= 0xFFFF else np.dtype("<u4")
        tokens = np.full(int(offsets[-1]), sentinel, dtype)
        inside = np.ones(len(tokens), bool)
        inside[offsets[1:] - 1] = False
        if arrays:
            tokens[inside] = np.concatenate(arrays)
        sa = _suffix_array(tokens)
        return cls(tokens, sa, offsets, record_ids, tokenizer, _root(_body(tokens, sa, offsets, record_ids,
                                                                            tokenizer)))

    # ---- query -------------------------------------------------------------------------------------
    def match_lengths(self, answer: Tokens) -> I64:
        """For each position of the answer, the length of its longest prefix found in one record."""
        return self._lengths(self._query(answer))

    def _lengths(self, query: I64) -> I64:
        m = len(query) - 1
        starts = np.arange(m, dtype=np.int64)
        if not len(self.sa):
            return np.zeros(m, np.int64)
        rank = self._lower_bound(query, starts)
        best = np.zeros(m, np.int64)
        for neighbour in (rank - 1, rank):
            ok = (neighbour >= 0) & (neighbour < len(self.sa))
            lcp, _ = self._compare(query, starts[ok], self.sa[neighbour[ok]].astype(np.int64))
            best[ok] = np.maximum(best[ok], lcp)
        return best

    def find(self, answer: Tokens, min_len: int = MIN_SPAN, max_records: int = MAX_RECORDS) -> list[Span]:
        """The maximal spans of `answer` at least `min_len` tokens long that occur in a record, by start.

        A span is maximal when no longer span of the answer that also occurs contains it; two maximal
        spans may overlap. An empty answer is an error (there is nothing to attribute).
        """
        if min_len < 1 or max_records < 0:
            raise ValueError("min_len must be at least 1 and max_records non-negative")
        query = self._query(answer)
        lengths = self._lengths(query)
        ends = np.arange(len(lengths), dtype=np.int64) + lengths
        before = np.concatenate(([0], np.maximum.accumulate(ends)[:-1]))
        starts = np.flatnonzero((lengths >= min_len) & (ends > before))
        if not starts.size:
            return []
        low, high = (self._span_queries(query, starts, lengths[starts], end) for end in (_LOW, _HIGH))
        first = self._lower_bound(low[0], low[1])
        last = self._lower_bound(high[0], high[1])
        spans = []
        for s, lo, hi in zip(starts.tolist(), first.tolist(), last.tolist(), strict=True):
            where = np.searchsorted(self.offsets, self.sa[lo:hi], side="right") - 1
            records = np.unique(where)
            e = s + int(lengths[s])
            spans.append(Span(s, e, tuple(query[s:e].tolist()), tuple(records[:max_records].tolist()),
                              len(records), hi - lo))
        return spans

    def span_records(self, span: Span) -> list[bytes]:
        """The record hashes of a span's listed records."""
        return [self.record_ids[r] for r in span.records]

    def _query(self, answer: Tokens) -> I64:
        """The answer as a query buffer: ids the snapshot cannot hold become a terminator, one ends it."""
        ids = _as_ids(answer, "the answer")
        if not ids.size:
            raise LedgerError(errors.EMPTY_ANSWER)
        return np.concatenate((np.where(ids < self.sentinel, ids, _LOW), [_LOW]))

    @staticmethod
    def _span_queries(query: I64, starts: I64, lengths: I64, end: int) -> tuple[I64, I64]:
        """Each span's tokens followed by `end`, in one buffer, and where each one starts.

        A span's tokens all occur in the snapshot, so none was turned into a terminator by `_query`.
        """
        parts: list[I64] = []
        for s, n in zip(starts.tolist(), lengths.tolist(), strict=True):
            parts += [query[s:s + n], np.array([end], np.int64)]
        return np.concatenate(parts), np.concatenate(([0], np.cumsum(lengths + 1)[:-1])).astype(np.int64)

    def _compare(self, query: I64, qpos: I64, cpos: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
        """Common-prefix length of each query[qpos:] with tokens[cpos:], and whether the query sorts first.

        Every query ends in a terminator that no snapshot token equals, and the token array ends in a
        sentinel that no query token equals, so a difference is always found before either runs out.
        """
        lcp = np.zeros(len(qpos), np.int64)
        less = np.zeros(len(qpos), bool)
        todo = np.arange(len(qpos))
        steps = np.arange(_CHUNK, dtype=np.int64)
        while todo.size:
            a = query[np.minimum(qpos[todo, None] + lcp[todo, None] + steps, len(query) - 1)]
            b = self.tokens[np.minimum(cpos[todo, None] + lcp[todo, None] + steps, len(self.tokens) - 1)]
            diff = a != b
            hit = diff.any(axis=1)
            at = diff.argmax(axis=1)
            rows = np.flatnonzero(hit)
            done = todo[rows]
            lcp[done] += at[rows]
            less[done] = a[rows, at[rows]] < b[rows, at[rows]]
            lcp[todo[~hit]] += _CHUNK
            todo = todo[~hit]
        return lcp, less

    def _lower_bound(self, query: I64, qpos: I64) -> I64:
        """For each query, the first rank in the suffix array whose suffix sorts after it."""
        lo = np.zeros(len(qpos), np.int64)
        hi = np.full(len(qpos), len(self.sa), np.int64)
        while (active := np.flatnonzero(lo < hi)).size:
            mid = (lo[active] + hi[active]) // 2
            _, less = self._compare(query, qpos[active], self.sa[mid].astype(np.int64))
            hi[active[less]] = mid[less]
            lo[active[~less]] = mid[~less] + 1
        return lo

    # ---- persistence -------------------------------------------------------------------------------
    def save(self, path: Path | str) -> None:
        """Write the index as one file (atomically: a temporary file renamed into place; I/O errors are
        `file_unreadable`)."""
        body = _body(self.tokens, self.sa, self.offsets, self.record_ids, self.tokenizer)
        with atomic_write(Path(path)) as f:
            f.write(MAGIC + self.root)
            for part in body:
                f.write(part)

    @classmethod
    def load(cls, path: Path | str, snapshot_root: bytes | None = None, tokenizer: str | None = None,
             root: bytes | None = None) -> SpanIndex:
        """Read and check an index file; the expected snapshot root, tokenizer and index root when given."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise LedgerError(errors.FILE_UNREADABLE, f"{path}: {exc}") from exc
        index = _parse(data, str(path))
        for what, want, have in (("snapshot root", snapshot_root, index.snapshot_root),
                                 ("index root", root, index.root)):
            if want is not None and want != have:
                raise LedgerError(errors.ATTRIBUTION_INDEX_MISMATCH, f"{path}: {what} {have.hex()}, expected "
                                                                     f"{want.hex()}")
        if tokenizer is not None and tokenizer != index.tokenizer:
            raise LedgerError(errors.ATTRIBUTION_INDEX_MISMATCH, f"{path}: tokenizer {index.tokenizer!r}, expected "
                                                                 f"{tokenizer!r}")
        return index


def _suffix_array(tokens: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if not len(tokens):
        return np.zeros(0, np.dtype("<i4"))
    sa = np.asarray(divsufsort(tokens))
    return sa.astype(np.dtype("<i4") if len(tokens) < 2**31 else np.dtype("<i8"))


def _header(tokens: npt.NDArray[Any], sa: npt.NDArray[Any], records: int, tokenizer: str) -> bytes:
    doc = {"format": FORMAT, "kind": TAG.decode(), "records": records, "sa_dtype": sa.dtype.str,
           "token_dtype": tokens.dtype.str, "tokenizer": tokenizer, "tokens": len(tokens)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _body(tokens: npt.NDArray[Any], sa: npt.NDArray[Any], offsets: I64, record_ids: Sequence[bytes],
          tokenizer: str) -> list[bytes]:
    header = _header(tokens, sa, len(record_ids), tokenizer)
    return [_LEN.pack(len(header)), header, tokens.tobytes(), sa.tobytes(), offsets.astype("<i8").tobytes(),
            b"".join(record_ids)]


def _root(body: Sequence[bytes | memoryview]) -> bytes:
    """`core.hashing.tagged(TAG, b"".join(body))`, without joining a large body into one copy."""
    h = hashlib.sha256(bytes((len(TAG),)) + TAG)
    for part in body:
        h.update(part)
    return h.digest()


def _parse(data: bytes, where: str) -> SpanIndex:
    def corrupt(why: str) -> LedgerError:
        return LedgerError(errors.ATTRIBUTION_INDEX_CORRUPT, f"{where}: {why}")

    head = len(MAGIC) + 32 + _LEN.size
    if len(data) < head or data[:len(MAGIC)] != MAGIC:
        raise corrupt("not a span index (bad magic or too short)")
    root, body = data[len(MAGIC):len(MAGIC) + 32], memoryview(data)[len(MAGIC) + 32:]
    if _root([body]) != root:
        raise corrupt("its content does not hash to its root (truncated or altered)")
    (size,) = _LEN.unpack_from(body)
    try:
        doc = json.loads(bytes(body[_LEN.size:_LEN.size + size]))
        assert doc["format"] == FORMAT and doc["kind"] == TAG.decode()
        token_dtype, sa_dtype = _TOKEN_DTYPES[doc["token_dtype"]], _SA_DTYPES[doc["sa_dtype"]]
        n, records, tokenizer = int(doc["tokens"]), int(doc["records"]), str(doc["tokenizer"])
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise corrupt(f"bad header ({exc!r})") from None
    pos = _LEN.size + size
    parts = []
    layout = ((token_dtype, n), (sa_dtype, n), (np.dtype("<i8"), records + 1), (np.dtype("u1"), 32 * records))
    for dtype, count in layout:
        nbytes = dtype.itemsize * count
        if pos + nbytes > len(body):
            raise corrupt("arrays shorter than the header says")
        parts.append(np.frombuffer(body, dtype, count, pos))
        pos += nbytes
    if pos != len(body):
        raise corrupt("bytes after the arrays")
    tokens, sa, offsets, ids = parts
    _check_structure(tokens, sa, offsets, corrupt)
    record_ids = [ids[32 * i:32 * i + 32].tobytes() for i in range(records)]
    return SpanIndex(tokens, sa, offsets, record_ids, tokenizer, root)


def _check_structure(tokens: npt.NDArray[Any], sa: npt.NDArray[Any], offsets: I64, corrupt: Any) -> None:
    """Cheap checks that the arrays fit together (a file can hash right and still be built wrong)."""
    n = len(tokens)
    if offsets[0] != 0 or offsets[-1] != n or (np.diff(offsets) < 1).any():
        raise corrupt("record offsets out of order")
    if len(sa) != n or (n and (int(sa.min()) < 0 or int(sa.max()) >= n
                               or (np.bincount(sa.astype(np.int64), minlength=n) != 1).any())):
        raise corrupt("the suffix array is not a permutation of the token positions")
    sentinel = int(tokens.max()) if n else 0
    if (tokens[offsets[1:] - 1] != sentinel).any() or int((tokens == sentinel).sum()) != len(offsets) - 1:
        raise corrupt("record separators out of place")
