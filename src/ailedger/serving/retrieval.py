"""Retrieval over a frozen Datanet snapshot, so an answer can quote and cite the records it used.

Why a snapshot and not the live Datanet: a citation must name records anyone can check, and pay
their contributors, so retrieval reads only a version the ledger froze (its Merkle root), exported
and verified against that root (`datanet.export`), and cached on disk under the root.

Why hybrid: BM25 (`lexical.py`) finds the record that shares a rare word with the question (a name,
a code, a number) and misses paraphrases; the static embedding (`datanet.embedding`, cosine as a dot
product of L2-normalised vectors) finds paraphrases and blurs rare words. Reciprocal-rank fusion
(each list's top `CANDIDATES`, score `sum 1 / (RRF_K + rank)`) needs no score calibration between
the two, and ties fall to the record hash, so the same query always cites the same records.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ailedger.core.merkle import merkle_root
from ailedger.datanet.embedding import Embedder, default_cache_dir, static_embedder
from ailedger.datanet.export import export_lines, export_version
from ailedger.datanet.gates.records import record_text as strings_of
from ailedger.datanet.remote import DatanetBackend
from ailedger.factory.data import record_text
from ailedger.serving.lexical import BM25, tokenize

CANDIDATES = 50  # from each ranking, into the fusion
RRF_K = 60
SNIPPET_CHARS = 600  # of a record's text, quoted in a prompt: k sources must fit a small model's context
KEEP_INDEXES = 4
KEEP_CONTRIBUTORS = 100_000

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Hit:
    """One retrieved record: its hash (hex), its place (1 = best), its fused score, who contributed it."""

    record: str
    rank: int
    score: float
    contributor: str  # "" until known
    text: str  # a snippet of at most SNIPPET_CHARS characters, whitespace collapsed


def index_text(record: Any) -> str:
    """What a record is searched by and quoted as: its `text`, its chat turns, or its strings joined."""
    return record_text(record) if isinstance(record, dict) else strings_of(record)


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """`text` on one line, cut at a word boundary near `limit` characters (with an ellipsis)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.8 else cut) + "…"


def _top(ids: I64, scores: npt.NDArray[Any], n: int, tiebreak: I64) -> I64:
    """The `n` best of `ids` by score, best first; equal scores in record-hash order."""
    if len(ids) > n:
        cut = np.partition(scores, len(ids) - n)[len(ids) - n]
        keep = scores >= cut  # everything tied with the n-th stays, so the tie-break decides, not the partition
        ids, scores = ids[keep], scores[keep]
    return ids[np.lexsort((tiebreak[ids], -scores))[:n]]


class SnapshotIndex:
    """The records of one snapshot, searchable by words and by meaning; read-only once built."""

    def __init__(self, records: Sequence[tuple[bytes, Any]], embed: Embedder,
                 contributors: Mapping[str, str] | None = None) -> None:
        self.hashes = [h for h, _ in records]
        self.texts = [index_text(r) for _, r in records]
        self.contributors = dict(contributors or {})
        self._embed = embed
        self.lexical = BM25(self.texts)
        self.vectors = embed(self.texts) if self.texts else np.zeros((0, 1), dtype=np.float32)
        n = len(self.hashes)
        self.tiebreak = np.empty(n, dtype=np.int64)
        self.tiebreak[np.argsort(np.array(self.hashes, dtype="S32"), kind="stable")] = np.arange(n)

    def __len__(self) -> int:
        return len(self.hashes)

    def lexical_ranking(self, query: str) -> I64:
        docs, scores = self.lexical.scores(query)
        return _top(docs, scores, CANDIDATES, self.tiebreak)

    def embedding_ranking(self, query: str) -> I64:
        q = self._embed([query])[0]
        if not len(self) or not q.any():
            return np.zeros(0, dtype=np.int64)
        # einsum, not `@`: a matrix-vector product is memory-bound, and BLAS's threads only add wake-up
        # latency (p95 8 ms at 10k records on 2 busy cores, against 0.5 ms in one thread)
        sims = np.einsum("ij,j->i", self.vectors, q)
        return _top(np.arange(len(self), dtype=np.int64), sims, CANDIDATES, self.tiebreak)

    def search(self, query: str, k: int) -> list[Hit]:
        """The `k` best records for `query` (fewer if the snapshot is smaller; none for a query without words)."""
        if k < 1 or not len(self) or not tokenize(query):
            return []
        fused: dict[int, float] = {}
        for ranking in (self.lexical_ranking(query), self.embedding_ranking(query)):
            for rank, doc in enumerate(ranking.tolist(), 1):
                fused[doc] = fused.get(doc, 0.0) + 1.0 / (RRF_K + rank)
        best = sorted(fused, key=lambda d: (-fused[d], int(self.tiebreak[d])))[:k]
        out = []
        for rank, doc in enumerate(best, 1):
            h = self.hashes[doc].hex()
            out.append(Hit(h, rank, fused[doc], self.contributors.get(h, ""), snippet(self.texts[doc])))
        return out


def read_snapshot_file(path: Path, root_hex: str) -> list[tuple[bytes, Any]] | None:
    """The (hash, record) pairs of an exported snapshot, or None if the file is missing or not that root."""
    try:
        lines = export_lines(path)
    except OSError:
        return None
    if merkle_root([h for h, _ in lines]).hex() != root_hex.lower():
        return None
    return [(h, json.loads(line)) for h, line in lines]


class Retriever:
    """Search any frozen version of any Datanet a node holds; thread-safe.

    Each snapshot is exported once into `<cache_dir>/rag/<root>.jsonl` (checked against the root on
    every load), indexed once, and the last `keep` indexes stay in memory. A version's root and a
    record's contributor never change, so both are remembered. The embedder loads on first use.
    """

    def __init__(self, backend: DatanetBackend, cache_dir: Path | None = None, embed: Embedder | None = None,
                 keep: int = KEEP_INDEXES) -> None:
        self.backend = backend
        self.dir = (cache_dir or default_cache_dir()) / "rag"
        self.keep = keep
        self._embed = embed
        self._lock = threading.Lock()
        self._embed_lock = threading.Lock()  # loading (or, the first time ever, distilling) takes a while
        self._indexes: OrderedDict[str, SnapshotIndex] = OrderedDict()  # by snapshot root
        self._building: dict[str, threading.Lock] = {}
        self._roots: dict[tuple[str, int], str] = {}
        self._contributors: OrderedDict[tuple[str, str], str] = OrderedDict()

    def search(self, datanet: str, version: int, query: str, k: int) -> list[Hit]:
        """The `k` best records of the snapshot for `query`, each with its contributor's address.

        Unknown Datanet or version: LedgerError datanet_not_found / version_not_found (404).
        """
        hits = self.index(datanet, version).search(query, k)
        return [replace(h, contributor=self.contributor(datanet, h.record)) for h in hits]

    def root(self, datanet: str, version: int) -> str:
        key = (datanet, version)
        with self._lock:
            found = self._roots.get(key)
        if found is None:
            found = str(self.backend.datanet_version(datanet, version, 0, 1)["root"]).lower()
            with self._lock:
                self._roots[key] = found
        return found

    def index(self, datanet: str, version: int) -> SnapshotIndex:
        """The snapshot's index, built (once, whoever asks first) if it is not in memory."""
        root = self.root(datanet, version)
        with self._lock:
            if (found := self._cached(root)) is not None:
                return found
            building = self._building.setdefault(root, threading.Lock())
        with building:  # one build per snapshot; the others wait for it and then find it cached
            with self._lock:
                if (found := self._cached(root)) is not None:
                    return found
            try:
                index = SnapshotIndex(self._records(datanet, version, root), self.embedder())
            finally:
                with self._lock:
                    self._building.pop(root, None)
            with self._lock:
                self._indexes[root] = index
                while len(self._indexes) > self.keep:
                    self._indexes.popitem(last=False)
        return index

    def _cached(self, root: str) -> SnapshotIndex | None:
        found = self._indexes.get(root)
        if found is not None:
            self._indexes.move_to_end(root)
        return found

    def _records(self, datanet: str, version: int, root: str) -> list[tuple[bytes, Any]]:
        path = self.dir / f"{root}.jsonl"
        records = read_snapshot_file(path, root)
        if records is None:  # not exported yet, or a damaged copy: fetch it again, verified on the way
            self.dir.mkdir(parents=True, exist_ok=True)
            export_version(datanet, version, self.backend, path)
            records = read_snapshot_file(path, root)
            assert records is not None, "export_version checked the root"
        return records

    def embedder(self) -> Embedder:
        with self._embed_lock:
            if self._embed is None:
                self._embed = static_embedder()
            return self._embed

    def contributor(self, datanet: str, record: str) -> str:
        key = (datanet, record)
        with self._lock:
            found = self._contributors.get(key)
        if found is None:
            found = str(self.backend.datanet_record(datanet, record)["contributor"])
            with self._lock:
                self._contributors[key] = found
                while len(self._contributors) > KEEP_CONTRIBUTORS:
                    self._contributors.popitem(last=False)
        return found
