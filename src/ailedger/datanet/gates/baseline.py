"""The near-duplicate gate against `datasketch`'s MinHashLSH on the same records: speed and agreement.

Why keep this in the package: the benchmark and the tests both need the same fair comparison —
same normalised text, same 5-character shingles, same threshold, permutation count and LSH
weights, same "first one passes" stream semantics (query, then insert only what was not flagged),
with datasketch used the fast way (permutations built once, `update_batch`). datasketch stops at
the LSH candidates; the gate also confirms them, which is where its precision comes from.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ailedger.datanet.gates.minhash import SHINGLE, normalise
from ailedger.datanet.gates.neardup import NearDupGate
from ailedger.datanet.gates.records import record_text

_CHUNK = 1000


def _shingles(text: str, k: int = SHINGLE) -> list[bytes]:
    norm = normalise(text)
    if 0 < len(norm) < k:
        return [norm.encode()]
    return [s.encode() for s in {norm[i:i + k] for i in range(len(norm) - k + 1)}]


def _scores(flags: Sequence[bool], truth: Sequence[bool]) -> tuple[float, float]:
    tp = sum(f and t for f, t in zip(flags, truth, strict=True))
    return tp / max(sum(truth), 1), tp / max(sum(flags), 1)


def ours(texts: Sequence[str], threshold: float, num_perm: int, seed: int = 1) -> list[bool]:
    """Stream `texts` through the near-duplicate gate in chunks; True where a record is flagged."""
    gate = NearDupGate(None, threshold, num_perm, seed)
    flags: list[bool] = []
    for s in range(0, len(texts), _CHUNK):
        chunk = texts[s:s + _CHUNK]
        keys = [(s + i).to_bytes(32, "big") for i in range(len(chunk))]
        flags += [m is not None for m in gate.check(chunk, keys, [True] * len(chunk))]
    return flags


def datasketch_flags(texts: Sequence[str], threshold: float, num_perm: int, weights: tuple[float, float],
                     seed: int = 1) -> list[bool]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    first = MinHash(num_perm=num_perm, seed=seed)
    permutations, scheme = first.permutations, first.scheme
    flags: list[bool] = []
    for i, text in enumerate(texts):
        m = MinHash(num_perm=num_perm, seed=seed, permutations=permutations, scheme=scheme)
        m.update_batch(_shingles(text))
        hit = bool(lsh.query(m))
        if not hit:
            lsh.insert(str(i), m)
        flags.append(hit)
    return flags


def compare_with_datasketch(records: Sequence[Any], threshold: float = 0.8, num_perm: int = 128, *,
                            truth: Sequence[bool] | None = None,
                            text_fields: Sequence[str] | None = None) -> dict[str, float]:
    """Time both on the same records (texts or JSON records) and score them against `truth` if given.

    Both run on one core in this process, one after the other; texts are extracted before timing.
    """
    texts = [r if isinstance(r, str) else record_text(r, text_fields) for r in records]
    probe = NearDupGate(None, threshold, num_perm).batch
    t0 = time.perf_counter()
    flags = ours(texts, threshold, num_perm)
    t1 = time.perf_counter()
    theirs = datasketch_flags(texts, threshold, num_perm, (probe.fp_weight, probe.fn_weight))
    t2 = time.perf_counter()
    n = max(len(texts), 1)
    result: dict[str, float] = {
        "records": len(texts), "bands": probe.bands, "rows": probe.rows,
        "ours_records_per_s": n / max(t1 - t0, 1e-9), "datasketch_records_per_s": n / max(t2 - t1, 1e-9),
        "ours_flagged": sum(flags), "datasketch_flagged": sum(theirs),
        "agreement": sum(a == b for a, b in zip(flags, theirs, strict=True)) / n,
    }
    result["speedup_vs_datasketch"] = result["ours_records_per_s"] / result["datasketch_records_per_s"]
    if truth is not None:
        result["ours_recall"], result["ours_precision"] = _scores(flags, truth)
        result["datasketch_recall"], result["datasketch_precision"] = _scores(theirs, truth)
    return result
