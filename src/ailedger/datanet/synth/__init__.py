"""A seeded generator of realistic synthetic Datanet records, each with its ground truth.

Why: the gates, the demo and the benchmark need data whose truth is known — which records are
honest, which are planted copies, junk, leaks, harmless look-alikes or off-topic — so that recall
and precision can be scored, and the same seed must give the same stream everywhere. The topic is
home cooking tips (the words live in `synth.writer`). Contributors: several honest cooks, a
spammer (exact copies, and near-copies of earlier honest records made by small edits with a
measured 5-shingle Jaccard of at least `near_dup_min_jaccard`), a junk poster, a leaker (PII inside
otherwise good records) and a drifter (another domain's vocabulary). Honest cooks also write
look-alikes — dates, times, versions, order numbers that fail Luhn — that must pass the PII gate.

Streaming: records come from a generator, made in blocks of 1,024 so that the Jaccard of all the
block's near-copies is measured in one vectorised pass; the only other state is a bounded ring of
recent honest records that copies are made from.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ailedger.datanet.gates.minhash import SHINGLE, normalise_many, shingle_hashes
from ailedger.datanet.gates.records import record_text
from ailedger.datanet.synth.writer import JUNK, LOOKALIKES, PII, Writer, edit, insert_sentence

Label = Literal["honest", "near_dup", "exact_dup", "junk", "pii", "pii_lookalike", "off_topic"]
LABELS: tuple[Label, ...] = ("honest", "near_dup", "exact_dup", "junk", "pii", "pii_lookalike", "off_topic")

SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["title", "text"], "additionalProperties": False,
    "properties": {"title": {"type": "string", "maxLength": 200}, "text": {"type": "string", "minLength": 1}},
}
_BLOCK = 1024


@dataclass(frozen=True)
class SynthMix:
    """Shares of each planted kind; honest records fill the rest."""

    near_dup: float = 0.10
    exact_dup: float = 0.02
    pii: float = 0.02
    pii_lookalike: float = 0.02
    off_topic: float = 0.02
    junk: float = 0.02
    near_dup_min_jaccard: float = 0.85

    def __post_init__(self) -> None:
        shares = (self.near_dup, self.exact_dup, self.pii, self.pii_lookalike, self.off_topic, self.junk)
        if min(shares) < 0 or sum(shares) > 0.9:
            raise ValueError("shares must be non-negative and leave at least 10% honest records")
        if not 0.0 < self.near_dup_min_jaccard <= 1.0:
            raise ValueError("near_dup_min_jaccard must be in (0, 1]")


@dataclass(frozen=True)
class SynthRecord:
    record: dict[str, Any]
    contributor: str
    label: Label
    source_index: int | None = None  # the honest record a copy was made from
    kind: str = ""  # which PII, look-alike or junk variety


def pair_jaccard(left: Sequence[str], right: Sequence[str], k: int = SHINGLE) -> npt.NDArray[np.float64]:
    """Exact Jaccard of the normalised k-shingle sets of left[i] and right[i], all pairs in one pass.

    Shingles are compared by the near-duplicate gate's own 32-bit hashes, one padded row per text:
    sorting rows dedupes each set, and sorting each pair's two sets side by side shows the shared
    shingles as adjacent equal values. Row sorts of a few hundred values are several times faster
    than one sort of the whole block. A chance hash collision (or a hash equal to the padding value)
    moves a value by about 1e-7, far below anything a test resolves.
    """
    n = len(left)
    if n == 0:
        return np.empty(0, dtype=np.float64)
    x, counts = shingle_hashes(normalise_many([*left, *right]), k)
    pad = np.uint32(0xFFFFFFFF)
    rows = np.full((2 * n, max(int(counts.max()), 1)), pad, dtype=np.uint32)
    rows[np.arange(rows.shape[1]) < counts[:, None]] = x
    rows.sort(axis=1)
    first = np.ones(rows.shape, dtype=bool)
    np.not_equal(rows[:, 1:], rows[:, :-1], out=first[:, 1:])
    sets = np.where(first, rows, pad)
    sizes = np.count_nonzero(sets != pad, axis=1)
    pairs = np.concatenate((sets[:n], sets[n:]), axis=1)
    pairs.sort(axis=1)
    both = np.count_nonzero((pairs[:, 1:] == pairs[:, :-1]) & (pairs[:, 1:] != pad), axis=1)
    union = sizes[:n] + sizes[n:] - both
    return np.where(union > 0, both / np.maximum(union, 1), 1.0)


class _Stream:
    def __init__(self, seed: int, mix: SynthMix, honest_contributors: int, ring: int) -> None:
        self.rng = random.Random(seed)
        self.w = Writer(self.rng)
        self.mix = mix
        self.cooks = [f"cook-{i + 1}" for i in range(honest_contributors)]
        self.ring: list[tuple[int, dict[str, Any]]] = []
        self.ring_size = ring
        self.cuts: list[tuple[float, Label]] = []
        acc = 0.0
        for label, share in (("near_dup", mix.near_dup), ("exact_dup", mix.exact_dup), ("pii", mix.pii),
                             ("pii_lookalike", mix.pii_lookalike), ("off_topic", mix.off_topic), ("junk", mix.junk)):
            acc += share
            self.cuts.append((acc, label))  # type: ignore[arg-type]

    def block(self, start: int, size: int) -> list[SynthRecord]:
        out: list[SynthRecord] = []
        copies: list[tuple[int, int, dict[str, Any]]] = []  # (position in block, source index, source)
        for index in range(start, start + size):
            u = self.rng.random()
            label: Label = next((lab for cut, lab in self.cuts if u < cut), "honest")
            if label == "near_dup" and self.ring:
                src_index, src = self.ring[int(self.rng.random() * len(self.ring))]
                copies.append((len(out), src_index, src))
                out.append(SynthRecord(src, "spammer", "near_dup", src_index))  # replaced below
            else:
                out.append(self._one(index, label))
        for (pos, src_index, _), copy in zip(copies, self._near_copies([src for _, _, src in copies]), strict=True):
            out[pos] = SynthRecord(copy, "spammer", "near_dup", src_index)
        return out

    def _one(self, index: int, label: Label) -> SynthRecord:
        w, rng = self.w, self.rng
        if label == "exact_dup" and self.ring:
            src_index, src = self.ring[int(rng.random() * len(self.ring))]
            return SynthRecord({"text": src["text"], "title": src["title"]}, "spammer", "exact_dup", src_index)
        if label == "pii":
            kind = w.pick(PII)
            return SynthRecord(insert_sentence(w.cooking(), w.pii(kind), rng), "leaker", "pii", kind=kind)
        if label == "pii_lookalike":
            kind = w.pick(LOOKALIKES)
            rec = insert_sentence(w.cooking(), w.lookalike(kind), rng)
            return SynthRecord(rec, w.pick(self.cooks), "pii_lookalike", kind=kind)
        if label == "off_topic":
            return SynthRecord(w.off_topic(), "drifter", "off_topic")
        if label == "junk":
            kind = w.pick(JUNK)
            return SynthRecord(w.junk(kind), "junk-poster", "junk", kind=kind)
        rec = w.cooking()
        if len(self.ring) < self.ring_size:
            self.ring.append((index, rec))
        else:
            self.ring[int(rng.random() * self.ring_size)] = (index, rec)
        return SynthRecord(rec, w.pick(self.cooks), "honest")

    def _near_copies(self, sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """1-3 small edits per source, redone (up to 8 rounds) until the copy's Jaccard reaches the minimum;
        a source that never gets there is copied with one punctuation change (Jaccard 1 after normalising)."""
        result: list[dict[str, Any] | None] = [None] * len(sources)
        todo = list(range(len(sources)))
        for _ in range(8):
            if not todo:
                break
            trial = []
            for i in todo:
                text = sources[i]["text"]
                for _ in range(1 + int(self.rng.random() * 3)):
                    text = edit(text, self.w)
                trial.append({"title": sources[i]["title"], "text": text})
            jac = pair_jaccard([record_text(sources[i]) for i in todo], [record_text(c) for c in trial])
            still = []
            for i, copy, j in zip(todo, trial, jac.tolist(), strict=True):
                if copy["text"] != sources[i]["text"] and j >= self.mix.near_dup_min_jaccard:
                    result[i] = copy
                else:
                    still.append(i)
            todo = still
        for i in todo:
            result[i] = {"title": sources[i]["title"], "text": sources[i]["text"].replace(".", "!", 1) + "!"}
        return [r for r in result if r is not None]


def generate(n: int, seed: int = 0, mix: SynthMix | None = None, honest_contributors: int = 5,
             ring: int = 4096) -> Iterator[SynthRecord]:
    """`n` records in stream order; copies are made from a ring of up to `ring` recent honest records."""
    stream = _Stream(seed, mix or SynthMix(), honest_contributors, ring)
    for start in range(0, n, _BLOCK):
        block = stream.block(start, _BLOCK)  # always whole blocks: a shorter stream is a prefix of a longer one
        yield from block[:n - start]
