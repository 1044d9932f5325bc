"""A seeded sparse random projection of LoRA gradients to k dimensions, regenerable by anyone.

Influence scores compare gradients of about a million LoRA parameters (SmolLM2 with rank-8 q/k/v/o
adapters has 921,600), so each gradient is first mapped to k numbers (k = 2048 by default) by a
random linear map P that keeps inner products on average: E[<Px, Py>] = <x, y>.

Why sparse (a sparse Johnson-Lindenstrauss map, Kane and Nelson's block construction) and not the
dense Gaussian or Rademacher matrix of TRAK's `BasicProjector`: a dense P has params x k entries
(1.9 G for SmolLM2 at k = 2048, 7.5 GB in fp32). It cannot be kept, so it must be regenerated in
blocks for every batch, and a query is a batch of one: measured here (docs/attribution.md), 8.5 s
per answer and checkpoint against 26 ms for this map. Each column of the sparse P has exactly `nnz`
non-zero entries, one in each of `nnz` equal bands of the k rows, each +-1/sqrt(nnz) (as fp32):
projecting costs nnz multiply-adds per parameter, and the whole map is nnz row numbers and values
per parameter (28 MiB for SmolLM2), drawn tensor by tensor in blocks of at most `BLOCK` parameters.

The map is a pure function of (seed, parameter name, shape, k, nnz), independent of how it is
computed or of the machine, so anyone can regenerate it:

- a tensor's key is the first 16 bytes (little-endian) of `tagged(b"influence-projection",
  compact JSON [seed, name, shape, k, nnz])`, keying NumPy's Philox4x64-10 bit generator at
  counter 0 (Random123's counter-based generator: integer arithmetic only, so no machine's floating
  point enters; the tests pin its first draws, so a NumPy that changed the stream would be caught);
- the tensor's parameters, flattened in C order, take `nnz` consecutive 64-bit draws each; draw
  `i` of parameter `j` puts `sign / sqrt(nnz)` in row `i * (k / nnz) + (low 32 bits mod k / nnz)`
  of column `j`, with sign -1 where the draw's top bit is set, +1 otherwise;
- tensors are laid out in name order; a gradient is the concatenation of its tensors, flattened.

Projection accumulates each row's terms in float64 (`np.bincount` adds them in input order) and
rounds once to float32, so the result does not depend on thread counts or BLAS builds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ailedger.core.hashing import tagged

TAG = b"influence-projection"
BLOCK = 1 << 18  # parameters whose entries are drawn at a time: bounds the generator's scratch memory
_LOW32 = np.uint64(0xFFFFFFFF)
_TOP = np.uint64(63)

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ParamShape:
    name: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


class SparseProjection:
    """The k x params sparse map for a list of named parameter tensors, built once and applied per gradient."""

    def __init__(self, params: Sequence[ParamShape], k: int, seed: int, nnz: int = 4) -> None:
        if nnz < 1 or k < nnz or k % nnz:
            raise ValueError(f"k={k} must be a positive multiple of nnz={nnz}")
        names = [p.name for p in params]
        if names != sorted(names) or len(set(names)) != len(names):
            raise ValueError("parameters must be listed once each, in name order")
        self.params = tuple(params)
        self.k, self.seed, self.nnz = k, seed, nnz
        self.size = sum(p.numel for p in self.params)  # parameters, the map's columns
        rows = np.empty(self.size * nnz, np.int32)
        signs = np.empty(self.size * nnz, np.float32)
        for start, stop, block_rows, block_signs in self.blocks():
            rows[start * nnz:stop * nnz] = block_rows
            signs[start * nnz:stop * nnz] = block_signs
        self.rows, self.signs = rows, signs

    def blocks(self) -> Iterator[tuple[int, int, npt.NDArray[np.int32], F32]]:
        """The map's non-zeros, at most `BLOCK` columns at a time: (first column, end column, rows, values)."""
        band = self.k // self.nnz
        offsets = np.arange(self.nnz, dtype=np.int64) * band
        scale = np.float32(1.0 / math.sqrt(self.nnz))
        column = 0
        for p in self.params:
            generator = np.random.Philox(key=self.key(p))
            left = p.numel
            while left:
                n = min(left, BLOCK)
                raw = generator.random_raw(n * self.nnz).reshape(n, self.nnz)
                rows = ((raw & _LOW32) % np.uint64(band)).astype(np.int64) + offsets
                values = np.where((raw >> _TOP) == 1, -scale, scale).astype(np.float32)
                yield column, column + n, rows.reshape(-1).astype(np.int32), values.reshape(-1)
                column += n
                left -= n

    def key(self, p: ParamShape) -> int:
        doc = json.dumps([self.seed, p.name, list(p.shape), self.k, self.nnz], separators=(",", ":"))
        return int.from_bytes(tagged(TAG, doc.encode())[:16], "little")

    def project(self, flat: npt.NDArray[np.floating]) -> F32:
        """P @ flat for one gradient laid out as the parameters are (length `size`)."""
        if flat.shape != (self.size,):
            raise ValueError(f"gradient of {flat.shape}, the projection takes ({self.size},)")
        weights = np.repeat(flat.astype(np.float64), self.nnz) * self.signs
        return np.bincount(self.rows, weights=weights, minlength=self.k).astype(np.float32)

    def spec(self) -> dict[str, object]:
        """What regenerates the map, for an index header."""
        return {"kind": "sparse-jl", "k": self.k, "nnz": self.nnz, "seed": self.seed,
                "params": [[p.name, list(p.shape)] for p in self.params]}
