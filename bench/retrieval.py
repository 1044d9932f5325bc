"""The retrieval benchmark: building a snapshot's hybrid index and answering queries, at 10k and 100k records.

The corpus is the seeded synthetic cooking stream (`datanet.synth`, honest records only: about 300
characters each, all on one topic, so the words overlap heavily — a hard case for BM25's posting
lists). Figures: build time split into BM25 and embedding, postings, resident bytes of the vectors,
query latency (p50/p95 of hybrid search, and of each side alone), and a sanity check of quality:
a record's first sentence finds that record at rank 1, or within the top 4 (templated records share
sentences with their near-copies, so 1.0 is not reachable here).
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

import bench
from ailedger.datanet.embedding import static_embedder
from ailedger.datanet.gates.records import canonical_record
from ailedger.datanet.synth import SynthMix, generate
from ailedger.serving.lexical import BM25
from ailedger.serving.retrieval import SnapshotIndex

QUERIES = 200
K = 4


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def _timed(fn: Any, *args: Any) -> float:
    t = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t) * 1000


def measure(n: int, embed: Any) -> dict[str, Any]:
    records = [s.record for s in generate(n, 7, SynthMix(0, 0, 0, 0, 0, 0))]
    pairs = [(hashlib.sha256(canonical_record(r)).digest(), r) for r in records]
    texts = [r["text"] for r in records]
    t = time.perf_counter()
    BM25(texts)
    bm25_s = time.perf_counter() - t
    t = time.perf_counter()
    embed(texts)
    embed_s = time.perf_counter() - t
    t = time.perf_counter()
    index = SnapshotIndex(pairs, embed)
    build_s = time.perf_counter() - t
    rng = np.random.default_rng(3)
    picks = rng.choice(n, size=QUERIES, replace=False).tolist()
    sentences = [texts[i].split(". ")[0] for i in picks]
    for q in sentences[:5]:
        index.search(q, K)  # warm
    hybrid = [_timed(index.search, q, K) for q in sentences]
    lexical = [_timed(index.lexical_ranking, q) for q in sentences]
    embedding = [_timed(index.embedding_ranking, q) for q in sentences]
    found = [[h.record for h in index.search(q, K)].index(pairs[i][0].hex()) + 1
             if pairs[i][0].hex() in {h.record for h in index.search(q, K)} else 0
             for q, i in zip(sentences, picks, strict=True)]
    return {"records": n, "build_s": build_s, "bm25_s": bm25_s, "embed_s": embed_s,
            "postings": len(index.lexical.docs), "vocab": len(index.lexical.vocab),
            "vector_bytes": int(index.vectors.nbytes), "hybrid_ms_p50": _p(hybrid, 50), "hybrid_ms_p95": _p(hybrid, 95),
            "lexical_ms_p50": _p(lexical, 50), "embedding_ms_p50": _p(embedding, 50),
            "self_retrieval_at_1": statistics.mean(r == 1 for r in found),
            "self_retrieval_at_4": statistics.mean(r >= 1 for r in found)}


def run(quick: bool) -> dict[str, Any]:
    embed = static_embedder()
    sizes = [10_000] if quick else [10_000, 100_000]
    results = {f"n{n}": measure(n, embed) for n in sizes}
    table = Table(title="retrieval: hybrid BM25 + static embedding (RRF), this machine")
    for col in ("records", "build s (bm25 / embed)", "postings", "vectors", "query p50 / p95", "lexical / embed p50",
                "self@1", f"self@{K}"):
        table.add_column(col)
    for r in results.values():
        table.add_row(f"{r['records']:,}", f"{r['build_s']:.2f} ({r['bm25_s']:.2f} / {r['embed_s']:.2f})",
                      f"{r['postings']:,}", f"{r['vector_bytes'] / 2**20:.0f} MiB",
                      f"{r['hybrid_ms_p50']:.2f} / {r['hybrid_ms_p95']:.2f} ms",
                      f"{r['lexical_ms_p50']:.2f} / {r['embedding_ms_p50']:.2f} ms",
                      f"{r['self_retrieval_at_1']:.3f}", f"{r['self_retrieval_at_4']:.3f}")
    Console(stderr=True).print(table)
    return results


if __name__ == "__main__":
    sys.exit(bench.main(run, sys.argv[1:]))
