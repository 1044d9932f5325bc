"""Vectorised MinHash signatures over character shingles, and the banding that suits a threshold.

Why this shape: the Jaccard similarity of two texts' 5-character shingle sets is what "near copy"
means here, and MinHash estimates it from `num_perm` minima. Computing those minima one shingle at
a time in Python (what `datasketch` does) costs most of the gate's time, so here a whole chunk of
texts is hashed at once:

1. normalise (lowercase, punctuation stripped, whitespace collapsed) so that trivial edits vanish;
2. hash every 5-codepoint window of the chunk with a polynomial rolling hash and a splitmix64
   finaliser, keeping 32 bits: one uint64 per shingle, computed once;
3. apply all permutations together as a (num_perm x shingles) array operation and take each
   record's minimum with `np.minimum.reduceat`.

The permutation family is Dietzfelbinger's multiply-add-shift: h(x) = ((a*x + b) mod 2^64) >> 32
for a 32-bit x and random 64-bit a, b. It is strongly universal, needs no prime, and uint64
arithmetic wraps mod 2^64 by itself, so there is no overflow to guard against (the Mersenne-prime
trick needs splitting into halves and about three times the operations). Because >> 32 is
monotone, the shift is taken after the minimum, on num_perm values instead of on every product.
Coefficients come from SHA-256 of the seed so a stored index stays valid across NumPy versions.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

SHINGLE = 5
EMPTY = np.uint32(0xFFFFFFFF)  # the signature value of a text with no shingles
_BLOCK = 8192  # shingles per kernel step: a 128 x 8192 uint64 block stays cache friendly
_PUNCT = re.compile(r"[^\w\s]+")
_ASCII_SEP = "\x1e"  # ASCII fast path: a whitespace control character, so never deleted
_ASCII_PUNCT = bytes(c for c in range(128) if not (chr(c).isalnum() or chr(c) == "_" or chr(c).isspace()))
_POLY = np.uint64(0x100000001B3)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]


def normalise(text: str) -> str:
    """Lowercase, strip punctuation, collapse whitespace: case or punctuation edits are not new text."""
    return " ".join(_PUNCT.sub("", text.lower()).split())


def normalise_many(texts: Sequence[str]) -> list[str]:
    """`normalise` for a whole chunk at once: one pass over the joined text, not one per record.

    ASCII texts (the common case) take a bytes path, `bytes.translate` deleting exactly the ASCII
    characters the regex would delete, about 15 times faster; other texts go through the regex.
    """
    out = [""] * len(texts)
    ascii_rows = [i for i, t in enumerate(texts) if t.isascii() and _ASCII_SEP not in t]
    if ascii_rows:
        joined = _ASCII_SEP.join([texts[i] for i in ascii_rows])
        stripped = joined.encode().lower().translate(None, _ASCII_PUNCT).decode()
        for i, part in zip(ascii_rows, stripped.split(_ASCII_SEP), strict=True):
            out[i] = " ".join(part.split())
    if len(ascii_rows) < len(texts):
        done = set(ascii_rows)
        for i, t in enumerate(texts):
            if i not in done:
                out[i] = normalise(t)
    return out


def _splitmix(z: U64) -> U64:
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def shingle_hashes(normalised: Sequence[str], k: int = SHINGLE) -> tuple[U64, npt.NDArray[np.int64]]:
    """Every k-codepoint shingle of every text as a 32-bit hash (held in uint64), and per-text counts.

    A non-empty text shorter than k is one shingle (padded with NUL, which normalising removes from
    real text); an empty text has none. Duplicated shingles are kept: they cannot change a minimum.
    """
    padded = [t + "\0" * (k - len(t)) if 0 < len(t) < k else t for t in normalised]
    lengths = np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))
    counts = np.maximum(lengths - (k - 1), 0)
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.uint64), counts
    cp = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    width = len(cp) - k + 1
    h = cp[:width].copy()
    for j in range(1, k):
        h *= _POLY
        h += cp[j:width + j]
    text_start = np.cumsum(lengths) - lengths
    shingle_start = np.cumsum(counts) - counts
    idx = np.repeat(text_start - shingle_start, counts) + np.arange(total, dtype=np.int64)
    return _splitmix(h[idx]) >> np.uint64(32), counts


def seeded_u64(seed: int, tag: bytes, n: int) -> U64:
    words = bytearray()
    counter = 0
    while len(words) < 8 * n:
        words += hashlib.sha256(tag + seed.to_bytes(8, "big", signed=True) + counter.to_bytes(4, "big")).digest()
        counter += 1
    return np.frombuffer(bytes(words[:8 * n]), dtype="<u8").astype(np.uint64)


class MinHasher:
    """Signatures for a chunk of texts: (n, num_perm) uint32, one row per text."""

    def __init__(self, num_perm: int = 128, seed: int = 1, k: int = SHINGLE) -> None:
        if num_perm < 2 or k < 1:
            raise ValueError("num_perm must be >= 2 and k >= 1")
        self.num_perm, self.seed, self.k = num_perm, seed, k
        self._a = (seeded_u64(seed, b"minhash-a", num_perm) | np.uint64(1)).reshape(-1, 1)
        self._b = seeded_u64(seed, b"minhash-b", num_perm).reshape(-1, 1)
        self._buf = np.empty((num_perm, _BLOCK), dtype=np.uint64)

    def signatures(self, texts: Sequence[str]) -> U32:
        x, counts = shingle_hashes(normalise_many(texts), self.k)
        return self.signatures_from_shingles(x, counts)

    def signatures_from_shingles(self, x: U64, counts: npt.NDArray[np.int64]) -> U32:
        n = len(counts)
        out = np.full((self.num_perm, n), np.iinfo(np.uint64).max, dtype=np.uint64)
        nonempty = np.flatnonzero(counts)
        starts = (np.cumsum(counts) - counts)[nonempty]
        for s in range(0, len(x), _BLOCK):
            e = min(s + _BLOCK, len(x))
            first = int(np.searchsorted(starts, s, side="right")) - 1
            last = int(np.searchsorted(starts, e, side="left"))
            offsets = np.concatenate(([0], starts[first + 1:last] - s))
            h = self._buf[:, :e - s]
            np.multiply(self._a, x[s:e], out=h)
            h += self._b
            cols = nonempty[first:last]
            out[:, cols] = np.minimum(out[:, cols], np.minimum.reduceat(h, offsets, axis=1))
        return np.ascontiguousarray((out >> np.uint64(32)).astype(np.uint32).T)


def sorted_unique(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """np.unique by sorting: several times faster than NumPy 2's hash-based np.unique on integer arrays."""
    s = np.sort(a)
    return s[np.concatenate(([True], s[1:] != s[:-1]))] if len(s) else s


def jaccard_estimate(a: U32, b: U32) -> float:
    return float(np.count_nonzero(a == b)) / int(a.shape[-1])


def _collision(s: npt.NDArray[np.float64], bands: int, rows: int) -> npt.NDArray[np.float64]:
    return 1.0 - (1.0 - s**rows) ** bands


@functools.lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising fp_weight * P(false candidate) + fn_weight * P(missed pair).

    Same objective as datasketch's `_optimal_param` (areas under the S-curve below and above the
    threshold), integrated with the trapezoid rule on a fine grid instead of scipy.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be strictly between 0 and 1")
    lo = np.linspace(0.0, threshold, 1001)
    hi = np.linspace(threshold, 1.0, 1001)
    best, best_err = (1, 1), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = float(np.trapezoid(_collision(lo, bands, rows), lo))
            fn = float(np.trapezoid(1.0 - _collision(hi, bands, rows), hi))
            err = fp * fp_weight + fn * fn_weight
            if err < best_err:
                best, best_err = (bands, rows), err
    return best
