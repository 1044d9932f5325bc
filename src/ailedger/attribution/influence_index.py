"""The influence index file: whitened, unit-normalised record features per checkpoint, hashed to one root.

Layout: `MAGIC || root || body`; body is a 4-byte little-endian header length, the canonical JSON
header, zero padding to a 64-byte boundary of the file, then for each checkpoint in step order its
whitening (see `Part`: a basis B, k x r, and coefficients c, r, both <f4) and its record features
Psi (records x k, <f2 or <f4, snapshot order). root = `core.hashing.tagged(b"influence-index",
body)`, hashed as the file streams, so the root published with the adapter commits to every byte
that scoring reads.

The header names what the index was built for and how: the adapter hash and its checkpoints (step,
LoRA tensors hash, damping, rank r), the base weights hash, the snapshot root and its record hashes in
order, the projection (kind, k, nnz, seed, the LoRA parameters' names and shapes), the damping
ratio, the optimizer correction, the loss settings and the method version. Loading refuses a file
whose body does not hash to its root or whose arrays do not fit its header
(`attribution_index_corrupt`), and one built for another adapter, base, snapshot or published root
(`attribution_index_mismatch`). The arrays are memory-mapped, never read whole.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ailedger.chain.files import atomic_write
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.merkle import merkle_root

MAGIC = b"AILINFL\x01"
TAG = b"influence-index"
FORMAT = 1
METHOD = "ailedger/influence/v1"
ALIGN = 64
DTYPES: dict[str, np.dtype[Any]] = {"<f2": np.dtype("<f2"), "<f4": np.dtype("<f4")}
_LEN = struct.Struct("<I")
_READ = 1 << 23
_ROWS = 8192  # records scored per matrix product: bounds the fp16-to-fp32 copy

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Part:
    """One checkpoint's arrays as scoring reads them.

    W = (Phi^T Phi + damping I)^(-1/2) is kept as `damping^(-1/2) I + B diag(c) B^T`: B holds the
    eigenvectors of Phi^T Phi whose eigenvalue e is not negligible beside the damping (k x r, r at
    most the number of records) and c = (e + damping)^(-1/2) - damping^(-1/2). So the index grows
    with its records, never with k^2 while the records are fewer than k.
    """

    step: int
    damping: float
    basis: npt.NDArray[Any]  # B, k x r
    coef: npt.NDArray[Any]  # c, r
    features: npt.NDArray[Any]  # rows of Phi W, each scaled to unit length (zero rows stay zero)

    def whiten(self, q: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """W q, for one vector or the rows of a matrix, in the basis's precision (float32 as stored)."""
        q = q.astype(self.basis.dtype)
        out: npt.NDArray[Any] = q / np.sqrt(self.damping) + ((q @ self.basis) * self.coef) @ self.basis.T
        return out


def header_bytes(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _padding(header_len: int) -> bytes:
    used = len(MAGIC) + 32 + _LEN.size + header_len
    return bytes(-used % ALIGN)


def write(path: Path, header: dict[str, Any], arrays: Iterable[npt.NDArray[Any]]) -> bytes:
    """Write the file atomically (a temporary renamed into place, after fsync); returns its root."""
    head = header_bytes(header)
    h = hashlib.sha256(bytes((len(TAG),)) + TAG)
    with atomic_write(path) as f:
        f.write(MAGIC + bytes(32))
        for part in (_LEN.pack(len(head)), head, _padding(len(head))):
            h.update(part)
            f.write(part)
        for array in arrays:
            data = np.ascontiguousarray(array).tobytes()
            h.update(data)
            f.write(data)
        root = h.digest()
        f.seek(len(MAGIC))
        f.write(root)
    return root


class InfluenceIndex:
    """A loaded index: its header and, per checkpoint, memory-mapped W and Psi."""

    def __init__(self, path: Path, root: bytes, header: dict[str, Any], parts: list[Part]) -> None:
        self.path, self.root, self.header, self.parts = path, root, header, parts
        self.record_hashes = [bytes.fromhex(h) for h in header["records"]]
        self.k = int(header["projection"]["k"])

    @property
    def adapter_hash(self) -> str:
        return str(self.header["adapter_hash"])

    @property
    def steps(self) -> list[int]:
        return [p.step for p in self.parts]

    def scores(self, queries: F32) -> npt.NDArray[np.float64]:
        """Mean over checkpoints of cos(W q_c, W phi_i) for every record i: one matrix product per checkpoint.

        `queries` holds the query's projected gradient at each checkpoint (checkpoints x k). A
        checkpoint where the query's gradient is zero adds 0 for every record.
        """
        if queries.shape != (len(self.parts), self.k):
            raise ValueError(f"queries of shape {queries.shape}, the index needs ({len(self.parts)}, {self.k})")
        total = np.zeros(len(self.record_hashes), np.float64)
        for part, q in zip(self.parts, queries, strict=True):
            w = part.whiten(q) if part.damping > 0 else np.zeros(self.k)
            norm = float(np.linalg.norm(w))
            if norm == 0.0:
                continue
            unit = (w / norm).astype(np.float32)
            for lo in range(0, len(total), _ROWS):
                total[lo:lo + _ROWS] += np.asarray(part.features[lo:lo + _ROWS], np.float32) @ unit
        return total / len(self.parts)

    @classmethod
    def load(cls, path: Path | str, adapter_hash: str | None = None, base_weights_hash: str | None = None,
             snapshot_root: bytes | None = None, root: bytes | None = None) -> InfluenceIndex:
        """Open and check an index file; the expected adapter, base, snapshot and published root when given."""
        p = Path(path)
        found_root, header, offset = _check(p)
        expected = (("adapter hash", adapter_hash, header["adapter_hash"]),
                    ("base weights hash", base_weights_hash, header["base_weights_hash"]),
                    ("snapshot root", snapshot_root.hex() if snapshot_root is not None else None,
                     header["snapshot_root"]),
                    ("index root", root.hex() if root is not None else None, found_root.hex()))
        for what, want, have in expected:
            if want is not None and want != have:
                raise LedgerError(errors.ATTRIBUTION_INDEX_MISMATCH, f"{p}: {what} {have}, expected {want}")
        k, n = int(header["projection"]["k"]), len(header["records"])
        dtype = DTYPES[header["dtype"]]
        parts = []
        for ckpt in header["checkpoints"]:
            rank = int(ckpt["rank"])
            arrays = []
            for shape, dt in (((k, rank), np.dtype("<f4")), ((rank,), np.dtype("<f4")), ((n, k), dtype)):
                count = int(np.prod(shape))
                arrays.append(np.memmap(p, dt, "r", offset, shape) if count else np.zeros(shape, dt))
                offset += dt.itemsize * count
            parts.append(Part(int(ckpt["step"]), float(ckpt["damping"]), *arrays))
        return cls(p, found_root, header, parts)


def _check(path: Path) -> tuple[bytes, dict[str, Any], int]:
    """The root, the header and where the arrays start, after hashing the whole body against the root."""
    def corrupt(why: str) -> LedgerError:
        return LedgerError(errors.ATTRIBUTION_INDEX_CORRUPT, f"{path}: {why}")

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + 32 + _LEN.size)
            if len(head) < len(MAGIC) + 32 + _LEN.size or head[:len(MAGIC)] != MAGIC:
                raise corrupt("not an influence index (bad magic or too short)")
            root = head[len(MAGIC):len(MAGIC) + 32]
            h = hashlib.sha256(bytes((len(TAG),)) + TAG)
            h.update(head[len(MAGIC) + 32:])
            (length,) = _LEN.unpack(head[len(MAGIC) + 32:])
            raw = f.read(min(length, size))
            h.update(raw)
            while chunk := f.read(_READ):
                h.update(chunk)
    except OSError as exc:
        raise LedgerError(errors.FILE_UNREADABLE, f"{path}: {exc}") from exc
    if h.digest() != root:
        raise corrupt("its content does not hash to its root (truncated or altered)")
    try:
        header = json.loads(raw)
        assert header["format"] == FORMAT and header["kind"] == TAG.decode() and header["method"] == METHOD
        k, n = int(header["projection"]["k"]), len(header["records"])
        itemsize = DTYPES[header["dtype"]].itemsize
        ranks = [int(c["rank"]) for c in header["checkpoints"]]
        assert all(0 <= r <= k and float(c["damping"]) >= 0 for r, c in zip(ranks, header["checkpoints"], strict=True))
        records = [bytes.fromhex(r) for r in header["records"]]
        assert all(len(r) == 32 for r in records) and ranks and k > 0
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise corrupt(f"bad header ({exc!r})") from None
    if merkle_root(records).hex() != header["snapshot_root"]:
        raise corrupt("its record hashes do not make its snapshot root")
    offset = len(MAGIC) + 32 + _LEN.size + length + len(_padding(length))
    if offset + sum(4 * (k + 1) * r + itemsize * n * k for r in ranks) != size:
        raise corrupt("arrays of another size than the header says")
    return root, header, offset
