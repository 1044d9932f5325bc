"""Influence: which training records taught the adapter this answer, by their gradients (TRAK/TrackStar).

Three verbs, as in TRAK: `build_index` featurises every record of the adapter's snapshot at every
saved checkpoint (`features.py`: the LoRA gradient of its training loss, optimizer-corrected, then
`projection.py`: a seeded sparse projection to k numbers) and finalises each checkpoint's features
Phi (records x k) into a whitening W = (Phi^T Phi + damping I)^(-1/2) and unit rows of Phi W;
`InfluenceScorer` featurises a query (the gradient of the answer's loss given its prompt) the same
way; `InfluenceIndex.scores` takes one matrix product per checkpoint:

    score(q, i) = mean over checkpoints c of  cos(W_c phi_c(q), W_c phi_c(i))
                = mean_c  phi_c(q)^T (Phi_c^T Phi_c + damping_c I)^(-1) phi_c(i) / (||W_c phi_c(q)|| ||W_c phi_c(i)||)

damping_c = `damping` (0.1 by default) times the mean eigenvalue of Phi_c^T Phi_c, trace / k. The
choice and its measurements are in docs/attribution.md ("Influence").

Building is resumable: each (checkpoint, chunk of records) lands in its own part file under
`OUT.parts/` (its bytes then their SHA-256, written to a temporary name and renamed), a restart skips
the parts that are whole and computes the rest, and the index file appears only when every part is
in and the finalised file has been written and renamed into place. Parts of another build (other
adapter, records or settings) found there are discarded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ailedger.attribution.features import (
    CheckpointRef,
    LoraGradients,
    adapter_checkpoints,
    lora_shapes,
    training_examples,
)
from ailedger.attribution.influence_index import FORMAT, METHOD, TAG, InfluenceIndex, Part, header_bytes, write
from ailedger.attribution.projection import F32, SparseProjection
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.merkle import merkle_root
from ailedger.factory.adapters import AdapterInfo, validate_adapter
from ailedger.factory.basemodel import BaseModel
from ailedger.factory.data import IGNORE, Example

if TYPE_CHECKING:
    from ailedger.cluster import Cluster

Progress = Callable[[str, int, int | None], None]  # (stage, done, total), as the factory's long steps report
PLAN_FILE = "plan.json"
NEGLIGIBLE = 1e-6  # eigenvalues below this fraction of the damping are left out of the whitening
_DIGEST = 32


@dataclass(frozen=True)
class InfluenceConfig:
    """The settings an index is built with; all of them are in its header."""

    k: int = 2048  # projection dimension
    seed: int = 0  # projection seed
    nnz: int = 4  # non-zeros per parameter in the sparse projection
    damping: float = 0.1  # damping as a fraction of the mean eigenvalue of Phi^T Phi
    optimizer_correction: bool = True  # divide gradients by AdamW's sqrt(v_hat) + eps (TrackStar)
    dtype: str = "<f2"  # stored features: "<f2" or "<f4"
    chunk: int = 256  # records per part file while building
    top_layers: int = 6  # differentiate only the LoRA tensors of the last N blocks (0, or N >= the depth: all)

    def validate(self) -> None:
        ok = {"k": 1 <= self.k <= 1 << 16 and self.k % self.nnz == 0, "nnz": 1 <= self.nnz <= 64,
              "seed": 0 <= self.seed < 1 << 63, "damping": 0 < self.damping < 1e6,
              "dtype": self.dtype in ("<f2", "<f4"), "chunk": self.chunk >= 1,
              "top_layers": 0 <= self.top_layers <= 1 << 10}
        bad = [name for name, good in ok.items() if not good]
        if bad:
            raise ValueError(f"bad influence settings: {', '.join(bad)}")


def chunk_for(records: int, cluster: Cluster | None, default: int = InfluenceConfig.chunk) -> int:
    """Records per part: `default` in one process; with a cluster about four chunks per worker (at most
    `default`), so every worker has work and the last chunks even out. The index does not depend on it."""
    if cluster is None:
        return default
    return min(default, max(1, -(-records // (4 * cluster.workers))))


def build_index(adapter_dir: Path | str, base: BaseModel, records: Sequence[dict[str, Any]],
                record_hashes: Sequence[bytes], out_path: Path | str, config: InfluenceConfig | None = None,
                progress: Progress | None = None, cluster: Cluster | None = None) -> InfluenceIndex:
    """Build (or resume building) the influence index of an adapter over its snapshot's records.

    `records` are the snapshot's records and `record_hashes` their hashes, in snapshot order; their
    Merkle root must be the snapshot root the adapter's card names. With a `cluster`, each chunk of
    records is featurized by a Ray task (`influence_tasks`); the file and its root are the same.
    """
    cfg = config or InfluenceConfig()
    cfg.validate()
    out = Path(out_path)
    info = validate_adapter(adapter_dir, base.info)
    ckpts = adapter_checkpoints(info)
    if len(records) != len(record_hashes) or any(len(h) != 32 for h in record_hashes):
        raise LedgerError(errors.BAD_RECORD_HASH, f"{len(records)} records for {len(record_hashes)} hashes "
                                                  "(32 bytes each)")
    root = merkle_root(list(record_hashes)).hex()
    trained_on = info.card.get("datanet", {}).get("root")
    if root != trained_on:
        raise LedgerError(errors.ATTRIBUTION_INDEX_MISMATCH, f"these records make snapshot root {root}, the adapter "
                                                             f"was trained on {trained_on}")
    # with a cluster the workers differentiate; this process only lays out the projection (no model copy)
    grads = LoraGradients(base, info, cfg.optimizer_correction, cfg.top_layers) if cluster is None else None
    projection = SparseProjection(lora_shapes(info, base, cfg.top_layers), cfg.k, cfg.seed, cfg.nnz)
    examples = training_examples(records, base, info.card)
    plan = _plan(info, base, root, record_hashes, ckpts, projection, cfg)
    parts = _Parts(out, plan, len(records), cfg)
    tick = progress or (lambda stage, done, total: None)
    total, done = len(records) * len(ckpts), 0
    tick("featurize", 0, total)
    try:
        if cluster is not None:  # the same chunks, each a Ray task; its blocks land as the local loop's would
            done = _featurize_on(cluster, info, base, cfg, examples, parts, len(ckpts), tick)
        else:
            assert grads is not None
            for lo, rows in parts.chunks:  # chunk by chunk, so a chunk's bottom passes serve every checkpoint
                todo = [c for c in range(len(ckpts)) if parts.read(c, lo, rows) is None]
                for c, block in zip(todo, featurize_chunk(grads, projection, ckpts, examples[lo:lo + rows], todo),
                                    strict=True):
                    parts.write(c, lo, block)
                    done += rows
                    tick("featurize", done, total)
                done += rows * (len(ckpts) - len(todo))
                tick("featurize", done, total)
    except KeyboardInterrupt:
        raise LedgerError(errors.INTERRUPTED, f"{done} of {total} record features kept in {parts.root}; build "
                                              "again with the same settings to resume") from None
    header = {**plan, "checkpoints": []}
    arrays: list[npt.NDArray[Any]] = []
    for c, ckpt in enumerate(ckpts):  # each checkpoint's entry gains the damping and rank it was finalised with
        tick("finalize", c, len(ckpts))
        part, damping = finalize(parts.phi(c), cfg.damping)
        header["checkpoints"].append({"step": ckpt.step, "adapter_hash": ckpt.adapter_hash, "damping": damping,
                                      "rank": part.coef.shape[0]})
        arrays += [part.basis, part.coef, part.features.astype(cfg.dtype)]
    write(out, header, arrays)
    tick("finalize", len(ckpts), len(ckpts))
    shutil.rmtree(parts.root, ignore_errors=True)
    return InfluenceIndex.load(out)


def featurize_chunk(grads: LoraGradients, projection: SparseProjection, ckpts: Sequence[CheckpointRef],
                    chunk: Sequence[Example | None], todo: Sequence[int]) -> list[F32]:
    """The features of a chunk of records (rows x k) at each checkpoint in `todo`, one block per checkpoint.

    One function for the local loop and the Ray tasks (`influence_tasks`), so both compute every
    number by the same operations in the same order.
    """
    bottoms = [grads.bottom(e.ids) if e is not None and todo else None for e in chunk]
    blocks = []
    for c in todo:
        grads.load(ckpts[c])
        block = np.zeros((len(chunk), projection.k), np.float32)
        for i, e in enumerate(chunk):
            if e is not None:
                block[i] = grads.features(projection, e.ids, e.labels, bottoms[i])
        blocks.append(block)
    return blocks


def _featurize_on(cluster: Cluster, info: AdapterInfo, base: BaseModel, cfg: InfluenceConfig,
                  examples: Sequence[Example | None], parts: _Parts, checkpoints: int, tick: Progress) -> int:
    """Featurize the chunks whose parts are missing as Ray tasks, writing each chunk's parts as it comes back."""
    from ailedger.attribution.influence_tasks import featurize_on

    jobs = []
    for lo, rows in parts.chunks:
        todo = [c for c in range(checkpoints) if parts.read(c, lo, rows) is None]
        if todo:
            jobs.append((lo, todo, list(examples[lo:lo + rows])))
    total = len(examples) * checkpoints
    done = total - sum(len(chunk) * len(todo) for _, todo, chunk in jobs)
    tick("featurize", done, total)
    for (lo, todo, chunk), blocks in zip(jobs, featurize_on(cluster, info, base, cfg, jobs), strict=True):
        for c, block in zip(todo, blocks, strict=True):
            parts.write(c, lo, block)
        done += len(chunk) * len(todo)
        tick("featurize", done, total)
    return done


def finalize(phi: npt.NDArray[np.float32], damping_ratio: float) -> tuple[Part, float]:
    """One checkpoint's whitening (see `influence_index.Part`) and unit whitened features, in float64 inside."""
    n, k = phi.shape
    p64 = phi.astype(np.float64)
    damping = damping_ratio * float(np.einsum("ij,ij->", p64, p64)) / k  # trace(Phi^T Phi) / k
    if damping == 0.0:  # no record has a gradient: every feature is zero
        return Part(0, 0.0, np.zeros((k, 0), np.float32), np.zeros(0, np.float32), np.zeros_like(phi)), 0.0
    if n < k:  # the same eigenpairs from the n x n Gram matrix: Phi^T Phi v = e v for v = Phi^T u / sqrt(e)
        values, small = np.linalg.eigh(p64 @ p64.T)
        keep = values > NEGLIGIBLE * damping  # the rest change W by less than float32 can hold
        values = values[keep]
        vectors = (p64.T @ small[:, keep]) / np.sqrt(values)
    else:
        values, vectors = np.linalg.eigh(p64.T @ p64)
        keep = values > NEGLIGIBLE * damping
        values, vectors = values[keep], vectors[:, keep]
    coef = (values + damping) ** -0.5 - damping ** -0.5
    exact = Part(0, damping, vectors, coef, phi)
    white = exact.whiten(phi.astype(np.float64))
    norms = np.linalg.norm(white, axis=1, keepdims=True)
    unit = np.divide(white, norms, out=np.zeros_like(white), where=norms > 0)
    return Part(0, damping, vectors.astype(np.float32), coef.astype(np.float32), unit.astype(np.float32)), damping


class InfluenceScorer:
    """Scores answers of one adapter against its index: the query side of `build_index`."""

    def __init__(self, index: InfluenceIndex, base: BaseModel, adapter_dir: Path | str) -> None:
        info = validate_adapter(adapter_dir, base.info)
        header = index.header
        for what, want, have in (("adapter hash", header["adapter_hash"], info.adapter_hash),
                                 ("base weights hash", header["base_weights_hash"], base.info.weights_hash)):
            if want != have:
                raise LedgerError(errors.ATTRIBUTION_INDEX_MISMATCH, f"{index.path}: built for {what} {want}, this "
                                                                     f"adapter has {have}")
        by_step = {c.step: c for c in adapter_checkpoints(info)}
        self.ckpts: list[CheckpointRef] = []
        for entry in header["checkpoints"]:
            ckpt = by_step.get(int(entry["step"]))
            if ckpt is None:
                raise LedgerError(errors.CHECKPOINT_MISSING, f"{info.path}: no checkpoint at step {entry['step']}")
            if ckpt.adapter_hash != entry["adapter_hash"]:
                raise LedgerError(errors.ATTRIBUTION_INDEX_MISMATCH, f"{ckpt.path}: LoRA tensors {ckpt.adapter_hash}, "
                                                                     f"the index has {entry['adapter_hash']}")
            self.ckpts.append(ckpt)
        self.index = index
        self.grads = LoraGradients(base, info, bool(header["optimizer_correction"]), int(header.get("top_layers", 0)))
        spec = header["projection"]
        self.projection = SparseProjection(self.grads.shapes, int(spec["k"]), int(spec["seed"]), int(spec["nnz"]))
        if self.projection.spec() != spec:
            raise LedgerError(errors.ATTRIBUTION_INDEX_MISMATCH, f"{index.path}: projected other LoRA tensors than "
                                                                 "this adapter's")
        for ckpt in self.ckpts:  # read now: a damaged checkpoint fails here, not at the first answer
            self.grads.state_of(ckpt)

    def query_features(self, prompt_ids: Sequence[int], answer_ids: Sequence[int]) -> F32:
        """The projected gradient of the answer's loss given the prompt, at each checkpoint (checkpoints x k)."""
        ids = [*_token_ids(prompt_ids, "the prompt"), *_token_ids(answer_ids, "the answer")]
        labels = [IGNORE] * len(prompt_ids) + list(answer_ids)
        if not answer_ids or not any(label != IGNORE for label in labels[1:]):
            raise LedgerError(errors.EMPTY_ANSWER, f"{len(answer_ids)} answer tokens after {len(prompt_ids)} prompt "
                                                   "tokens")
        rows = []
        bottom = self.grads.bottom(ids)  # the same for every checkpoint (None without a split)
        for ckpt in self.ckpts:
            self.grads.load(ckpt)
            rows.append(self.grads.features(self.projection, ids, labels, bottom))
        return np.stack(rows)

    def scores(self, prompt_ids: Sequence[int], answer_ids: Sequence[int]) -> npt.NDArray[np.float64]:
        """Every record's influence on the answer, in snapshot order."""
        return self.index.scores(self.query_features(prompt_ids, answer_ids))


def top(index: InfluenceIndex, scores: npt.NDArray[np.float64], n: int = 10) -> list[tuple[bytes, float]]:
    """The `n` highest-scoring records (hash, score), ties to the earlier record."""
    order = np.argsort(-scores, kind="stable")[:n]
    return [(index.record_hashes[i], float(scores[i])) for i in order]


def _token_ids(values: Sequence[int], what: str) -> list[int]:
    out = [int(v) for v in values]
    if any(v < 0 or v >= 2**31 - 1 for v in out):
        raise LedgerError(errors.BAD_TOKEN_IDS, f"{what} holds an id outside 0..{2**31 - 2}")
    return out


def _plan(info: AdapterInfo, base: BaseModel, root: str, record_hashes: Sequence[bytes],
          ckpts: list[CheckpointRef], projection: SparseProjection, cfg: InfluenceConfig) -> dict[str, Any]:
    """The header less what finalising adds: everything that decides the parts' contents."""
    hp = info.card.get("hyperparams", {})
    return {"format": FORMAT, "kind": TAG.decode(), "method": METHOD, "adapter_hash": info.adapter_hash,
            "base_weights_hash": base.info.weights_hash, "snapshot_root": root,
            "records": [h.hex() for h in record_hashes], "projection": projection.spec(),
            "damping_ratio": cfg.damping, "optimizer_correction": cfg.optimizer_correction, "dtype": cfg.dtype,
            "top_layers": cfg.top_layers,
            "loss": {"max_len": hp.get("max_len"), "loss_on": hp.get("loss_on", "all")},
            "checkpoints": [{"step": c.step, "adapter_hash": c.adapter_hash} for c in ckpts]}


class _Parts:
    """`OUT.parts/`: one file per (checkpoint, chunk of records), kept across restarts of the same build.

    A part is its features (<f4) followed by their SHA-256, written to a temporary name and renamed;
    one that is missing, short or does not hash right is computed again. `plan.json` holds what the
    parts were computed for: a directory left by another build is emptied first.
    """

    def __init__(self, out: Path, plan: dict[str, Any], n: int, cfg: InfluenceConfig) -> None:
        self.root = out.with_name(out.name + ".parts")
        self.k = cfg.k
        self.chunks = [(lo, min(cfg.chunk, n - lo)) for lo in range(0, n, cfg.chunk)]
        want = header_bytes({**plan, "chunk": cfg.chunk})
        try:
            same = (self.root / PLAN_FILE).read_bytes() == want
        except OSError:
            same = False
        if not same:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root.mkdir(parents=True)
            _atomic(self.root / PLAN_FILE, want)

    def _path(self, c: int, lo: int) -> Path:
        return self.root / f"c{c:03d}-r{lo:09d}.part"

    def read(self, c: int, lo: int, rows: int) -> F32 | None:
        try:
            data = self._path(c, lo).read_bytes()
        except OSError:
            return None
        body = data[:-_DIGEST]
        if len(data) != 4 * rows * self.k + _DIGEST or hashlib.sha256(body).digest() != data[-_DIGEST:]:
            return None
        return np.frombuffer(body, np.dtype("<f4")).reshape(rows, self.k).astype(np.float32)

    def write(self, c: int, lo: int, block: F32) -> None:
        body = np.ascontiguousarray(block, np.dtype("<f4")).tobytes()
        _atomic(self._path(c, lo), body + hashlib.sha256(body).digest())

    def phi(self, c: int) -> F32:
        """Checkpoint `c`'s features of every record (records x k)."""
        blocks = []
        for lo, rows in self.chunks:
            block = self.read(c, lo, rows)
            if block is None:
                raise LedgerError(errors.ATTRIBUTION_INDEX_CORRUPT, f"{self._path(c, lo)} changed while building")
            blocks.append(block)
        return np.concatenate(blocks) if blocks else np.zeros((0, self.k), np.float32)


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        raise LedgerError(errors.FILE_UNREADABLE, f"{path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
