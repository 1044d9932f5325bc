"""Okapi BM25 over a fixed set of documents, held as posting lists in NumPy arrays.

Why our own and not `bm25s`: a snapshot's index is built once and queried many times from worker
threads, and the whole structure is three flat arrays (`indptr`, `docs`, `weights`, CSR by term),
so a query is a few slices and one `bincount`, with no Python loop over documents. Each posting
already holds its term's full BM25 contribution for that document (idf times the saturated,
length-normalised term frequency), so scoring a query is a sum. The idf is Lucene's
`ln(1 + (N - df + 0.5) / (df + 0.5))`, which never goes negative for very common words.

Building is vectorised too: every (term, document) pair of the corpus becomes one integer
`term * N + doc`, and a single `np.unique` gives both the postings in term order and their term
frequencies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

K1 = 1.2
B = 0.75
_WORD = re.compile(r"\w+")

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def tokenize(text: str) -> list[str]:
    """Lowercase words: runs of letters, digits and underscores."""
    return _WORD.findall(text.lower())


class BM25:
    """`scores(query)`: the BM25 score of every document that shares a word with the query."""

    def __init__(self, docs: Sequence[str], k1: float = K1, b: float = B) -> None:
        n = len(docs)
        tokens = [tokenize(d) for d in docs]
        lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=n)
        self.vocab: dict[str, int] = {}
        add = self.vocab.setdefault
        flat = np.fromiter((add(w, len(self.vocab)) for doc in tokens for w in doc), dtype=np.int64,
                           count=int(lengths.sum()))
        self.n_docs = n
        pairs, tf = np.unique(flat * max(n, 1) + np.repeat(np.arange(n, dtype=np.int64), lengths),
                              return_counts=True)  # sorted by term, then document
        terms, docs_of = np.divmod(pairs, max(n, 1))
        df = np.bincount(terms, minlength=len(self.vocab))
        self.indptr = np.zeros(len(self.vocab) + 1, dtype=np.int64)
        np.cumsum(df, out=self.indptr[1:])
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        avgdl = float(lengths.mean()) if n and lengths.any() else 1.0
        norm = k1 * (1 - b + b * lengths / avgdl)
        self.docs = docs_of.astype(np.int32)
        self.weights = (idf[terms] * tf * (k1 + 1) / (tf + norm[docs_of])).astype(np.float32)

    def scores(self, query: str) -> tuple[I64, F64]:
        """(documents, their scores) for the documents that share at least one word with `query`.

        Each distinct query word counts once; words the corpus never uses are ignored. The sum is one
        `bincount` over the query words' postings into a dense vector (no sort, however long the lists).
        """
        ids = sorted({self.vocab[w] for w in tokenize(query) if w in self.vocab})
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        spans = [slice(self.indptr[t], self.indptr[t + 1]) for t in ids]
        dense = np.bincount(np.concatenate([self.docs[s] for s in spans]),
                            weights=np.concatenate([self.weights[s] for s in spans]), minlength=self.n_docs)
        hit = np.flatnonzero(dense)
        return hit, np.asarray(dense[hit], dtype=np.float64)
