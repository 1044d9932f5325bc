"""The near-duplicate gate: a record whose text is a near-copy of one the Datanet or this batch holds.

Why "first one passes": within a batch the earliest record of a near-duplicate group is the
original as far as the gate can tell, so it passes and the later copies are flagged. Only records
that passed every gate so far join the batch's index, so junk cannot shadow a later honest record.
The outcome does not depend on how the stream is cut into chunks: within a chunk the same
candidates and the same confirmation are used as across chunks, and rows are resolved in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ailedger.datanet.gates.lsh import NearDupIndex, empty_rows, estimate, low_bits
from ailedger.datanet.gates.minhash import sorted_unique
from ailedger.datanet.gates.verdict import DuplicateReason

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
_SLICE = 1 << 14  # candidate pairs confirmed per step


@dataclass(frozen=True)
class NearDupMatch:
    reason: DuplicateReason
    matched: bytes  # the hash of the earlier record
    jaccard: float  # its estimated Jaccard similarity

    def detail(self) -> str:
        return f"like record {self.matched.hex()[:16]}, estimated Jaccard {self.jaccard:.2f}"


class NearDupGate:
    """Checks chunks of texts in stream order against the Datanet's index and the batch so far."""

    def __init__(self, datanet: NearDupIndex | None = None, threshold: float = 0.8, num_perm: int = 128,
                 seed: int = 1) -> None:
        self.datanet = datanet
        self.batch = datanet.same_settings() if datanet is not None else NearDupIndex(threshold, num_perm, seed)

    def check(self, texts: Sequence[str], hashes: Sequence[bytes], eligible: Sequence[bool],
              signatures: npt.NDArray[np.uint32] | None = None) -> list[NearDupMatch | None]:
        """One result per text; texts whose record is `eligible` (passed so far) and unflagged join the batch.

        `signatures` are the texts' MinHash signatures when the caller computed them already (elsewhere,
        with the same num_perm and seed: `runner.Screener`).
        """
        sigs = self.batch.signatures(texts) if signatures is None else signatures
        found: list[NearDupMatch | None] = [None] * len(texts)
        if self.datanet is not None:
            self._first_matches(self.datanet, sigs, DuplicateReason.IN_DATANET, found)
        self._first_matches(self.batch, sigs, DuplicateReason.WITHIN_BATCH, found)
        passing = np.asarray(eligible, dtype=bool) & ~empty_rows(sigs)
        earlier, later, est = self._confirmed_within(sigs)
        bounds = np.searchsorted(later, np.arange(len(texts) + 1))
        for j in np.flatnonzero(np.diff(bounds)).tolist():
            lo, hi = int(bounds[j]), int(bounds[j + 1])
            partners = earlier[lo:hi]
            ok = passing[partners] & np.asarray([found[i] is None for i in partners.tolist()], dtype=bool)
            if found[j] is None and ok.any():
                first = int(np.argmax(ok))
                found[j] = NearDupMatch(DuplicateReason.WITHIN_BATCH, hashes[int(partners[first])],
                                        float(est[lo + first]))
        add = [r for r in range(len(texts)) if passing[r] and found[r] is None]
        self.batch.add_many([hashes[r] for r in add], sigs[add])
        return found

    @staticmethod
    def _first_matches(index: NearDupIndex, sigs: npt.NDArray[np.uint32], reason: DuplicateReason,
                       found: list[NearDupMatch | None]) -> None:
        rows, ids, est = index.matches(sigs)
        for r, i, e in zip(rows.tolist(), ids.tolist(), est.tolist(), strict=True):
            if found[r] is None:
                found[r] = NearDupMatch(reason, index.record_hash_at(i), e)

    def _confirmed_within(self, sigs: npt.NDArray[np.uint32]) -> tuple[I64, I64, F64]:
        """Confirmed row pairs (earlier, later, estimate) of this chunk, sorted by later row then earlier.

        Candidates are rows sharing a band key; within a group of g rows with one key every row is
        paired with every earlier one, all in NumPy. Estimates are computed in slices so that a
        pathological chunk (hundreds of near-copies of one text) costs time, not memory.
        """
        keys = self.batch.band_keys(sigs)
        live = np.repeat(~empty_rows(sigs), self.batch.bands)
        flat = keys.ravel()[live]
        rows = np.repeat(np.arange(len(sigs), dtype=np.int64), self.batch.bands)[live]
        order = np.argsort(flat, kind="stable")  # stable: rows ascend within a group
        flat, rows = flat[order], rows[order]
        new_group = np.concatenate(([True], flat[1:] != flat[:-1])) if len(flat) else np.empty(0, bool)
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(flat)), 0))
        rank = np.arange(len(flat)) - group_start  # how many rows precede this one in its group
        total = int(rank.sum())
        later_pos = np.repeat(np.arange(len(flat)), rank)
        earlier_pos = np.repeat(group_start, rank) + (np.arange(total) - np.repeat(np.cumsum(rank) - rank, rank))
        pairs = sorted_unique(rows[later_pos] * len(sigs) + rows[earlier_pos])
        later, earlier = pairs // max(len(sigs), 1), pairs % max(len(sigs), 1)
        distinct = earlier != later
        later, earlier = later[distinct], earlier[distinct]
        bits = low_bits(sigs)
        est = np.concatenate([estimate(bits[earlier[s:s + _SLICE]], bits[later[s:s + _SLICE]])
                              for s in range(0, len(later), _SLICE)] or [np.empty(0)])
        keep = est >= self.batch.threshold
        return earlier[keep], later[keep], est[keep]
