"""Retrieval over a Datanet snapshot: BM25, the static embedding, their fusion, and the snapshot cache.

The corpus is synthetic: eight topics with their own words, a few hundred records, one of them with a
made-up word no other record has. The embedder is the real static one (distilled once into the
user's cache, as in test_embedding.py).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.merkle import merkle_root
from ailedger.datanet.embedding import Embedder, default_cache_dir, static_embedder
from ailedger.datanet.gates.records import canonical_record
from ailedger.serving.lexical import BM25, tokenize
from ailedger.serving.retrieval import SNIPPET_CHARS, Retriever, SnapshotIndex, index_text, snippet

TOPICS = {
    "astronomy": ["telescope", "galaxy", "nebula", "planet", "orbit", "comet", "stars", "moon", "eclipse", "asteroid"],
    "cooking": ["simmer", "garlic", "oven", "dough", "recipe", "saucepan", "butter", "onions", "roast", "spices"],
    "football": ["goal", "striker", "referee", "penalty", "midfield", "league", "match", "goalkeeper", "coach",
                 "stadium"],
    "finance": ["interest", "bonds", "inflation", "equity", "dividend", "portfolio", "bank", "loan", "currency",
                "shares"],
    "medicine": ["patient", "fever", "vaccine", "surgeon", "diagnosis", "antibiotic", "clinic", "symptoms", "dose",
                 "nurse"],
    "programming": ["compiler", "function", "variable", "debugger", "python", "loop", "syntax", "repository", "bug",
                    "library"],
    "gardening": ["soil", "seeds", "compost", "tomatoes", "pruning", "roses", "watering", "weeds", "mulch",
                  "greenhouse"],
    "music": ["guitar", "melody", "chord", "drummer", "orchestra", "violin", "rhythm", "concert", "piano", "song"],
}
FRAMES = ["The {a} and the {b} were discussed at length, along with the {c}.",
          "Every {a} depends on a good {b}; remember the {c} as well.",
          "Notes on the {a}: check the {b} first, then the {c}.",
          "She wrote about the {a}, the {b} and the {c} in her diary."]
RARE = {"title": "alloy", "text": "A zyxquorbium rivet keeps the old saucepan from warping on the stove."}


def corpus(per_topic: int = 40, seed: int = 3) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    out = []
    for topic, words in TOPICS.items():
        for i in range(per_topic):
            a, b, c = rng.sample(words, 3)
            out.append((topic, {"title": f"{topic} {i}", "text": rng.choice(FRAMES).format(a=a, b=b, c=c)}))
    return [*out, ("cooking", RARE)]


def hashed(records: list[Any]) -> list[tuple[bytes, Any]]:
    return [(hashlib.sha256(canonical_record(r)).digest(), r) for r in records]


@pytest.fixture(scope="module")
def embed() -> Embedder:
    return static_embedder(default_cache_dir())


@pytest.fixture(scope="module")
def topics() -> dict[str, str]:
    """Topic by record hash (hex)."""
    return {h.hex(): t for (h, _), (t, _) in zip(hashed([r for _, r in corpus()]), corpus(), strict=True)}


@pytest.fixture(scope="module")
def index(embed: Embedder) -> SnapshotIndex:
    return SnapshotIndex(hashed([r for _, r in corpus()]), embed)


RARE_HASH = hashlib.sha256(canonical_record(RARE)).hexdigest()
PARAPHRASE = "writing software code"  # programming, without one word of its records


def test_bm25_matches_the_textbook_formula() -> None:
    docs = ["the cat sat on the mat", "the dog sat", "cats and dogs", "", "the the the cat"]
    bm = BM25(docs)
    toks = [tokenize(d) for d in docs]
    avgdl = sum(map(len, toks)) / len(toks)

    def reference(query: str, d: int) -> float:
        score = 0.0
        for w in set(tokenize(query)):
            df = sum(w in t for t in toks)
            if not df:
                continue
            tf = toks[d].count(w)
            idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
            score += idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * len(toks[d]) / avgdl))
        return score

    for query in ["the cat", "dog sat sat", "mat", "Cat THE", "unicorn"]:
        found, scores = bm.scores(query)
        expected = {d: reference(query, d) for d in range(len(docs)) if reference(query, d) > 0}
        assert dict(zip(found.tolist(), scores.tolist(), strict=True)) == pytest.approx(expected, rel=1e-5)
        assert all(any(w in toks[d] for w in tokenize(query)) for d in found.tolist())


def test_rare_keyword_is_first(index: SnapshotIndex) -> None:
    lexical = index.lexical_ranking("zyxquorbium")
    assert len(lexical) == 1 and index.hashes[int(lexical[0])].hex() == RARE_HASH
    hits = index.search("zyxquorbium", 4)
    assert hits[0].record == RARE_HASH and hits[0].rank == 1 and "zyxquorbium" in hits[0].text


def test_paraphrase_finds_its_topic(index: SnapshotIndex, topics: dict[str, str]) -> None:
    words = set(tokenize(PARAPHRASE))
    assert not any(words & set(tokenize(index_text(r))) for t, r in corpus() if t == "programming")
    assert len(index.lexical_ranking(PARAPHRASE)) == 0
    assert [topics[h.record] for h in index.search(PARAPHRASE, 5)] == ["programming"] * 5
    for query, topic in [("celestial bodies seen through observatory lenses", "astronomy"),
                         ("doctors healing sick people", "medicine")]:
        assert [topics[h.record] for h in index.search(query, 4)] == [topic] * 4, query


def test_hybrid_gets_both(index: SnapshotIndex, topics: dict[str, str]) -> None:
    hits = index.search(f"zyxquorbium {PARAPHRASE}", 4)
    assert hits[0].record == RARE_HASH
    assert [topics[h.record] for h in hits[1:]] == ["programming"] * 3


def test_deterministic_whatever_the_order(index: SnapshotIndex, embed: Embedder) -> None:
    records = [r for _, r in corpus()]
    random.Random(9).shuffle(records)
    shuffled = SnapshotIndex(hashed(records), embed)
    for query in ["zyxquorbium", PARAPHRASE, "the goal", "the the the", "moon garlic penalty"]:
        assert shuffled.search(query, 8) == index.search(query, 8) == index.search(query, 8)


def test_empty_query_small_snapshot_and_snippets(index: SnapshotIndex, embed: Embedder) -> None:
    assert index.search("", 4) == [] and index.search("  ?! ", 4) == [] and index.search("moon", 0) == []
    small = SnapshotIndex(hashed([{"text": "one moon"}, {"messages": [{"role": "user", "content": "two"}]}, "three"]),
                          embed, contributors={})
    hits = small.search("moon", 10)
    assert len(hits) == 3 and hits[0].text == "one moon" and [h.rank for h in hits] == [1, 2, 3]
    assert {h.text for h in hits} == {"one moon", "user: two", "three"}
    assert SnapshotIndex([], embed).search("moon", 3) == []
    long = " ".join(["word"] * 400)
    cut = snippet(long)
    assert len(cut) <= SNIPPET_CHARS and cut.endswith("…") and snippet("a\n  b") == "a b"


WORDS = sorted({w for words in TOPICS.values() for w in words} | {"the", "zyxquorbium", "unknownword"})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(WORDS), min_size=0, max_size=6), noise=st.text(max_size=8),
       k=st.integers(1, 40))
def test_results_unique_sorted_at_most_k(index: SnapshotIndex, words: list[str], noise: str, k: int) -> None:
    query = " ".join(words) + noise
    hits = index.search(query, k)
    assert len(hits) <= k and len({h.record for h in hits}) == len(hits)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    if not tokenize(query):
        assert hits == []
    if any(w in index.lexical.vocab for w in tokenize(query)):
        assert hits


class FakeNode:
    """The node calls a Retriever makes, over Datanets held in memory; counts blob reads."""

    def __init__(self, datanets: dict[str, list[list[Any]]]) -> None:
        self.versions = {name: [hashed(v) for v in versions] for name, versions in datanets.items()}
        self.blobs = {h.hex(): canonical_record(r) for vs in self.versions.values() for v in vs for h, r in v}
        self.reads: Counter[str] = Counter()

    def datanet_version(self, name: str, number: int, offset: int = 0, limit: int = 10_000) -> dict[str, Any]:
        if name not in self.versions:
            raise LedgerError(errors.DATANET_NOT_FOUND, repr(name))
        if not 1 <= number <= len(self.versions[name]):
            raise LedgerError(errors.VERSION_NOT_FOUND, f"{name} version {number}")
        hashes = [h for h, _ in self.versions[name][number - 1]]
        page = hashes[offset:offset + limit]
        return {"datanet": name, "version": number, "root": merkle_root(hashes).hex(), "count": len(hashes),
                "height": 7, "offset": offset, "hashes": [h.hex() for h in page],
                "next_offset": offset + len(page) if offset + len(page) < len(hashes) else None}

    def get_blob(self, hash_hex: str) -> bytes:
        self.reads["blob"] += 1
        return self.blobs[hash_hex]

    def datanet_record(self, name: str, hash_hex: str) -> dict[str, Any]:
        self.reads["record"] += 1
        return {"hash": hash_hex, "contributor": "al1" + hash_hex[:8]}


def test_retriever_caches_exports_and_indexes(tmp_path: Path, embed: Embedder) -> None:
    records = [r for _, r in corpus(per_topic=5)]
    node = FakeNode({"mix": [records[:20], records], "other": [records[:20]]})
    retriever = Retriever(node, tmp_path, embed, keep=1)  # type: ignore[arg-type]
    hits = retriever.search("mix", 2, "zyxquorbium", 3)
    assert hits[0].record == RARE_HASH and hits[0].contributor == "al1" + RARE_HASH[:8]
    root = node.datanet_version("mix", 2)["root"]
    assert (tmp_path / "rag" / f"{root}.jsonl").exists() and node.reads["blob"] == len(records)
    assert retriever.search("mix", 2, "zyxquorbium", 3) == hits and node.reads["record"] == 3  # all cached
    retriever.search("mix", 1, "moon", 2)  # evicts version 2 from memory (keep=1), not from disk
    retriever.search("other", 1, "moon", 2)  # the same records as mix@1: the same index
    blobs = node.reads["blob"]
    assert blobs == len(records) + 20
    again = Retriever(node, tmp_path, embed)  # type: ignore[arg-type]
    assert again.search("mix", 2, "zyxquorbium", 3) == hits and node.reads["blob"] == blobs  # from the file
    (tmp_path / "rag" / f"{root}.jsonl").write_text("{}\n")  # a damaged copy is fetched again
    assert Retriever(node, tmp_path, embed).search("mix", 2, "zyxquorbium", 3) == hits  # type: ignore[arg-type]
    assert node.reads["blob"] == blobs + len(records)
    for name, version, code in [("nope", 1, errors.DATANET_NOT_FOUND), ("mix", 3, errors.VERSION_NOT_FOUND)]:
        with pytest.raises(LedgerError) as caught:
            retriever.search(name, version, "moon", 2)
        assert caught.value.code is code and code.http_status == 404


def test_retriever_builds_each_snapshot_once_under_concurrency(tmp_path: Path, embed: Embedder) -> None:
    node = FakeNode({"mix": [[r for _, r in corpus(per_topic=10)]]})
    retriever = Retriever(node, tmp_path, embed)  # type: ignore[arg-type]
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(retriever.search("mix", 1, "moon orbit", 4)))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 6 and all(r == results[0] for r in results) and len(results[0]) == 4
    assert node.reads["blob"] == 81


def test_snapshot_file_is_the_export_format(tmp_path: Path, embed: Embedder) -> None:
    """The cached file is exactly what `datanet export` writes: canonical JSON lines hashing to the root."""
    from ailedger.datanet.export import verify_export

    records = [r for _, r in corpus(per_topic=2)]
    node = FakeNode({"mix": [records]})
    Retriever(node, tmp_path, embed).index("mix", 1)  # type: ignore[arg-type]
    root = node.datanet_version("mix", 1)["root"]
    path = tmp_path / "rag" / f"{root}.jsonl"
    assert verify_export(path, root)
    assert [json.loads(line) for line in path.read_text().splitlines()] == records
