"""The off-topic gate: a record whose embedding lies far from the centre of the Datanet's accepted records.

Why a centroid: a Datanet is about one topic, so the mean direction of its accepted records'
embeddings is a cheap, stable summary of it; the cosine distance of a new record to that direction
ranks how far it strays, and a per-Datanet threshold turns the rank into a verdict. The embedding
function is injected: the ingest default is a static model distilled from MiniLM (see
`datanet.embedding`), and a Datanet can ask for the full model. With no centroid yet (an empty
Datanet) the gate passes everything: there is nothing to be off from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from ailedger.datanet.gates.verdict import OffTopicReason

Embed = Callable[[list[str]], npt.NDArray[np.floating]]
F32 = npt.NDArray[np.float32]
CALIBRATION_QUANTILE = 0.995


def _unit_rows(x: npt.NDArray[np.floating]) -> F32:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.where(norms > 0, norms, 1.0), dtype=np.float32)


class Centroid:
    """A running mean of unit-length embeddings, so the centroid follows the Datanet as records are accepted."""

    def __init__(self, dim: int) -> None:
        self.sum = np.zeros(dim, dtype=np.float64)
        self.count = 0

    def add(self, embeddings: npt.NDArray[np.floating]) -> None:
        unit = _unit_rows(embeddings)
        self.sum += unit.sum(axis=0, dtype=np.float64)
        self.count += len(unit)

    def direction(self) -> F32 | None:
        norm = float(np.linalg.norm(self.sum))
        return None if self.count == 0 or norm == 0.0 else (self.sum / norm).astype(np.float32)


class OffTopicGate:
    def __init__(self, embed: Embed, centroid: npt.NDArray[np.floating] | None = None,
                 threshold: float = 0.5) -> None:
        if not 0.0 < threshold <= 2.0:
            raise ValueError("the cosine-distance threshold must be in (0, 2]")
        self.embed, self.threshold = embed, threshold
        self.centroid = None if centroid is None else _unit_rows(np.asarray(centroid).reshape(1, -1))[0]

    @classmethod
    def from_accepted(cls, embed: Embed, texts: Sequence[str], threshold: float = 0.5,
                      batch: int = 1024) -> OffTopicGate:
        """The gate for a Datanet whose accepted records are `texts` (embedded in batches)."""
        acc: Centroid | None = None
        for s in range(0, len(texts), batch):
            emb = embed(list(texts[s:s + batch]))
            acc = acc or Centroid(emb.shape[1])
            acc.add(emb)
        return cls(embed, None if acc is None else acc.direction(), threshold)

    @classmethod
    def calibrated(cls, embed: Embed, texts: Sequence[str], quantile: float = CALIBRATION_QUANTILE) -> OffTopicGate:
        """Centred on `texts` (accepted records), with the threshold at their own `quantile` distance.

        Why calibrate: how far on-topic records lie from the centre depends on the embedding model
        and on how broad the topic is, so a fixed number is wrong for most Datanets; the accepted
        records themselves say where on-topic ends.
        """
        gate = cls.from_accepted(embed, texts, threshold=2.0)
        if gate.centroid is None or not texts:
            return gate
        limit = float(np.quantile(gate.distances(texts), quantile))
        return cls(embed, gate.centroid, min(max(limit, 1e-3), 2.0))

    def distances(self, texts: Sequence[str]) -> F32:
        """Cosine distance (1 - cosine similarity) of each text to the centroid; 0 with no centroid."""
        if self.centroid is None or not texts:
            return np.zeros(len(texts), dtype=np.float32)
        return np.asarray(1.0 - _unit_rows(self.embed(list(texts))) @ self.centroid, dtype=np.float32)

    def check(self, texts: Sequence[str]) -> list[tuple[OffTopicReason, str] | None]:
        return [(OffTopicReason.FAR_FROM_TOPIC, f"cosine distance {d:.2f}, the limit is {self.threshold:.2f}")
                if d > self.threshold else None for d in self.distances(texts).tolist()]
