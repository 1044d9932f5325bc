"""A MinHash LSH index that answers "which known records are near-copies of these?" for a chunk at once.

Why banding and then a check: banding (rows of the signature hashed together) finds candidate pairs
without comparing against every record, and is tuned to err towards too many candidates; each
candidate is then confirmed by the Jaccard estimate of the two signatures, which is what makes the
answer precise. The default weights (0.1 on false candidates, 0.9 on missed pairs) pick 14 bands of
9 rows for threshold 0.8 and 128 permutations: a pair at Jaccard 0.85 becomes a candidate 97% of
the time (datasketch's even weights give 9 x 13 and 69%).

Why this storage: each band key lives in sorted NumPy runs (merged geometrically, like an LSM tree)
searched with `searchsorted`, not in Python dicts, so a chunk queries in a few array operations and
a record costs about 330 bytes (its 32-byte hash, 14 band keys with their ids, and the signature's
low 8 bits): a million records take a third of a gigabyte. Keeping 8 bits per minimum is b-bit
MinHash (Li and König, 2010): unequal minima agree by chance 1 time in 256, and the estimate
corrects for that.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet.gates.minhash import EMPTY, MinHasher, optimal_bands, seeded_u64, sorted_unique

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

FORMAT = "ailedger-neardup-v1"
_CHANCE = 1.0 / 256.0  # two different minima share their low 8 bits with this probability
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: the same index always saves to the same bytes


def low_bits(sigs: U32) -> U8:
    return (sigs & np.uint32(0xFF)).astype(np.uint8)


def estimate(a: U8, b: U8) -> F64:
    """Jaccard estimates for row pairs of b-bit signatures, corrected for chance agreement."""
    agree = np.count_nonzero(a == b, axis=-1) / a.shape[-1]
    return np.asarray((agree - _CHANCE) / (1.0 - _CHANCE), dtype=np.float64)


def empty_rows(sigs: U32) -> npt.NDArray[np.bool_]:
    return np.asarray((sigs == EMPTY).all(axis=1))


class NearDupIndex:
    """Signatures of known records, searchable for confirmed near-duplicates (estimate >= threshold).

    Texts with no shingles (empty after normalising) are stored but never indexed nor matched:
    they would all share one bucket, and their emptiness is the quality gate's business.
    """

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, seed: int = 1, *,
                 fp_weight: float = 0.1, fn_weight: float = 0.9) -> None:
        if not 0.0 < threshold < 1.0 or not 2 <= num_perm <= 1024:
            raise LedgerError(errors.BAD_GATE_CONFIG, "threshold must be in (0, 1) and num_perm in [2, 1024]")
        self.threshold, self.num_perm, self.seed = threshold, num_perm, seed
        self.fp_weight, self.fn_weight = fp_weight, fn_weight
        self.bands, self.rows = optimal_bands(threshold, num_perm, fp_weight, fn_weight)
        self.hasher = MinHasher(num_perm, seed)
        self._mult = seeded_u64(seed, b"lsh-band", self.bands * self.rows).reshape(self.bands, self.rows)
        self._hashes: U8 = np.empty((16, 32), dtype=np.uint8)
        self._bits: U8 = np.empty((16, num_perm), dtype=np.uint8)
        self._n = 0
        self._runs: list[tuple[U64, I64]] = []

    def settings(self) -> dict[str, object]:
        return {"threshold": self.threshold, "num_perm": self.num_perm, "seed": self.seed,
                "fp_weight": self.fp_weight, "fn_weight": self.fn_weight, "bands": self.bands, "rows": self.rows}

    def same_settings(self) -> NearDupIndex:
        """An empty index with these settings, whose signatures are comparable with this one's."""
        return NearDupIndex(self.threshold, self.num_perm, self.seed, fp_weight=self.fp_weight,
                            fn_weight=self.fn_weight)

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        """Bytes held for the indexed records (capacity included): the index's memory cost."""
        return int(self._hashes.nbytes + self._bits.nbytes + sum(k.nbytes + i.nbytes for k, i in self._runs))

    def signatures(self, texts: Sequence[str]) -> U32:
        return self.hasher.signatures(texts)

    def band_keys(self, sigs: U32) -> U64:
        """(n, bands) keys: each band's rows mixed into one uint64 by a seeded linear hash (mod 2^64)."""
        used = sigs[:, :self.bands * self.rows].astype(np.uint64).reshape(len(sigs), self.bands, self.rows)
        return np.asarray((used * self._mult).sum(axis=2, dtype=np.uint64))

    def record_hash_at(self, i: int) -> bytes:
        return bytes(self._hashes[i].tobytes())

    def add(self, record_hash: bytes, signature: U32) -> None:
        self.add_many([record_hash], signature.reshape(1, -1))

    def add_many(self, hashes: Sequence[bytes], sigs: U32) -> None:
        if len(hashes) != len(sigs) or sigs.shape[1:] != (self.num_perm,):
            raise ValueError("one signature of num_perm values per hash")
        if any(len(h) != 32 for h in hashes):
            raise ValueError("record hashes are 32 bytes")
        n0, n = self._n, len(hashes)
        if n == 0:
            return
        self._reserve(n0 + n)
        self._hashes[n0:n0 + n] = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(n, 32)
        self._bits[n0:n0 + n] = low_bits(sigs)
        self._n += n
        keep = np.flatnonzero(~empty_rows(sigs))
        keys = self.band_keys(sigs[keep]).ravel()
        self._push_run(keys, np.repeat(keep.astype(np.int64) + n0, self.bands))

    def query(self, signature: U32) -> list[bytes]:
        """Hashes of the indexed records whose estimated Jaccard with `signature` reaches the threshold."""
        _, ids, est = self.matches(signature.reshape(1, -1))
        return [self.record_hash_at(int(i)) for i in ids[np.argsort(-est, kind="stable")]]

    def matches(self, sigs: U32) -> tuple[I64, I64, F64]:
        """Confirmed (query row, index id, estimate) triples for a chunk, sorted by row then id."""
        keys = self.band_keys(sigs)
        live = np.repeat(~empty_rows(sigs), self.bands)
        q, qrow = keys.ravel()[live], np.repeat(np.arange(len(sigs), dtype=np.int64), self.bands)[live]
        rows_parts, id_parts = [], []
        for run_keys, run_ids in self._runs:
            lo = np.searchsorted(run_keys, q, side="left")
            count = np.searchsorted(run_keys, q, side="right") - lo
            total = int(count.sum())
            if total:
                pos = np.repeat(lo - (np.cumsum(count) - count), count) + np.arange(total)
                rows_parts.append(np.repeat(qrow, count))
                id_parts.append(run_ids[pos])
        if not rows_parts:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
        pairs = sorted_unique(np.concatenate(rows_parts) * self._n + np.concatenate(id_parts))
        rows, ids = pairs // self._n, pairs % self._n
        est = estimate(low_bits(sigs[rows]), self._bits[ids])
        keep = est >= self.threshold
        return rows[keep], ids[keep], est[keep]

    def _reserve(self, n: int) -> None:
        if n > len(self._hashes):
            cap = max(n, 2 * len(self._hashes))
            self._hashes = np.resize(self._hashes, (cap, 32))
            self._bits = np.resize(self._bits, (cap, self.num_perm))

    def _push_run(self, keys: U64, ids: I64) -> None:
        """Add a sorted run, merging while the last run is not much bigger: O(log n) runs in all."""
        order = np.argsort(keys, kind="stable")
        run_keys, run_ids = keys[order], ids[order]
        while self._runs and len(self._runs[-1][0]) <= 2 * len(run_keys):
            old_keys, old_ids = self._runs.pop()
            run_keys, run_ids = np.concatenate((old_keys, run_keys)), np.concatenate((old_ids, run_ids))
            order = np.argsort(run_keys, kind="stable")  # timsort: linear on two sorted runs
            run_keys, run_ids = run_keys[order], run_ids[order]
        if len(run_keys):
            self._runs.append((run_keys, run_ids))

    def _merged(self) -> tuple[U64, I64]:
        """All runs as one, sorted by (key, id): the canonical form, whatever the order of inserts."""
        if not self._runs:
            return np.empty(0, np.uint64), np.empty(0, np.int64)
        keys = np.concatenate([k for k, _ in self._runs])
        ids = np.concatenate([i for _, i in self._runs])
        order = np.lexsort((ids, keys))
        return keys[order], ids[order]

    def save(self, path: str | Path) -> None:
        """One .npz file (arrays plus meta.json) whose bytes depend only on the indexed records."""
        keys, ids = self._merged()
        arrays = {"hashes": self._hashes[:self._n], "bits": self._bits[:self._n], "keys": keys, "ids": ids}
        meta = {"format": FORMAT, "count": self._n, **self.settings()}
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            for name, arr in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
                zf.writestr(zipfile.ZipInfo(f"{name}.npy", _ZIP_TIME), buf.getvalue())
            zf.writestr(zipfile.ZipInfo("meta.json", _ZIP_TIME), json.dumps(meta, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> NearDupIndex:
        try:
            with zipfile.ZipFile(path) as zf:
                meta = json.loads(zf.read("meta.json"))
                arrays = {name: np.lib.format.read_array(io.BytesIO(zf.read(f"{name}.npy")), allow_pickle=False)
                          for name in ("hashes", "bits", "keys", "ids")}
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
            index = cls(float(meta["threshold"]), int(meta["num_perm"]), int(meta["seed"]),
                        fp_weight=float(meta["fp_weight"]), fn_weight=float(meta["fn_weight"]))
            n = int(meta["count"])
            hashes, bits, keys, ids = (arrays[k] for k in ("hashes", "bits", "keys", "ids"))
            if (hashes.shape != (n, 32) or bits.shape != (n, index.num_perm) or keys.shape != ids.shape
                    or hashes.dtype != np.uint8 or bits.dtype != np.uint8 or keys.dtype != np.uint64
                    or ids.dtype != np.int64 or (len(ids) and not 0 <= ids.min() <= ids.max() < n)
                    or bool(np.any(keys[1:] < keys[:-1]))):
                raise ValueError("array shapes or types do not match the meta data")
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            raise LedgerError(errors.BAD_NEARDUP_INDEX, f"{path}: {exc}") from exc
        index._reserve(n)
        index._hashes[:n], index._bits[:n], index._n = hashes, bits, n
        if len(keys):
            index._runs = [(keys, ids)]
        return index
