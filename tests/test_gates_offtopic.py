"""Off-topic gate with a deterministic hashing-trick bag-of-words embedder (tests only; not shipped)."""

from __future__ import annotations

import re
import zlib

import numpy as np
import numpy.typing as npt
import pytest

from ailedger.datanet.gates.offtopic import Centroid, OffTopicGate
from ailedger.datanet.gates.records import record_text
from ailedger.datanet.synth import generate

_WORD = re.compile(r"[a-z]{4,}")
_STOP_WORDS = ("with that this them they than then when your into before after every from have will what "
               "which while there their about would could should were been more most much very just also "
               "only even still some other once time years least experience worth step sooner plan honestly "
               "trust rule advice small thing")
_STOP = frozenset(_STOP_WORDS.split(" "))


def bow_embed(texts: list[str], dim: int = 1024) -> npt.NDArray[np.float32]:
    """Square-rooted counts of content words (4+ letters, not on a short stop list), hashed by CRC-32."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in _WORD.findall(text.lower()):
            if word not in _STOP:
                out[i, zlib.crc32(word.encode()) % dim] += 1.0
    return np.sqrt(out)


def auc(negatives: npt.NDArray[np.floating], positives: npt.NDArray[np.floating]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    greater = (positives[:, None] > negatives[None, :]).mean()
    ties = (positives[:, None] == negatives[None, :]).mean()
    return float(greater + ties / 2)


def test_separates_off_topic_records() -> None:
    records = list(generate(6000, seed=21))
    honest = [record_text(r.record) for r in records if r.label == "honest"]
    off = [record_text(r.record) for r in records if r.label == "off_topic"]
    train, held = honest[:3000], honest[3000:]
    gate = OffTopicGate.from_accepted(bow_embed, train, threshold=0.5, batch=700)
    train_d = gate.distances(train)
    held_d, off_d = gate.distances(held), gate.distances(off)
    assert auc(held_d, off_d) >= 0.95
    threshold = float(np.quantile(train_d, 0.99))
    tuned = OffTopicGate(bow_embed, gate.centroid, threshold)
    found = [v is not None for v in tuned.check(off)]
    wrongly = [v is not None for v in tuned.check(held)]
    assert sum(found) / len(found) >= 0.9
    assert sum(wrongly) / len(wrongly) <= 0.03


def test_no_centroid_passes_everything() -> None:
    gate = OffTopicGate(bow_embed)
    assert gate.check(["anything at all", ""]) == [None, None]
    assert OffTopicGate.from_accepted(bow_embed, []).centroid is None


def test_centroid_is_a_running_mean_of_unit_vectors() -> None:
    acc = Centroid(3)
    acc.add(np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    acc.add(np.array([[0.0, 5.0, 0.0]]))
    direction = acc.direction()
    assert direction is not None and np.allclose(direction, [2 ** -0.5, 2 ** -0.5, 0.0], atol=1e-6)
    assert Centroid(3).direction() is None


def test_threshold_is_checked() -> None:
    with pytest.raises(ValueError):
        OffTopicGate(bow_embed, threshold=0.0)


def test_calibrated_threshold_is_the_accepted_records_own_quantile() -> None:
    train = [record_text(s.record) for s in generate(3000, seed=5) if s.label == "honest"][:1500]
    gate = OffTopicGate.calibrated(bow_embed, train, quantile=0.99)
    own = gate.distances(train)
    assert gate.threshold == pytest.approx(float(np.quantile(own, 0.99)), rel=1e-6)
    assert (own > gate.threshold).mean() <= 0.011
    assert OffTopicGate.calibrated(bow_embed, []).centroid is None
