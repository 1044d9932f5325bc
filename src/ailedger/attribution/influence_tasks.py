"""Per-record gradient extraction for the influence index as Ray tasks: one task per chunk of records.

Each task gets the chunk's training examples (token ids and labels, encoded once by the caller) and
the checkpoints still missing for it, and returns one block of projected features per checkpoint,
computed by `influence.featurize_chunk`, the very function the local loop runs. A worker keeps the
caller's base across jobs (`BaseRef.resident`, shared with training tasks) and builds the adapter's
gradients and projection once per build (`cluster.per_worker`), for all the build's chunks.

Why the results are the local build's bit for bit: the chunks are the build's own (`--chunk`,
never the number of workers); each record is its own batch of one, so no record's numbers depend
on which task computed its neighbours; the base is loaded in the same dtype and the LoRA weights and
the optimizer correction from the same files; the parts are written in chunk order. A worker runs
one torch thread (Ray's OMP_NUM_THREADS=1 for a one-CPU task); the test suite and `bench ray`
check the roots against the local build's, whose thread count is torch's default.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ailedger.attribution.features import LoraGradients, adapter_checkpoints
from ailedger.attribution.influence import InfluenceConfig, featurize_chunk
from ailedger.attribution.projection import F32, SparseProjection
from ailedger.cluster import Cluster, imap_ordered, per_worker
from ailedger.factory.adapters import AdapterInfo, validate_adapter
from ailedger.factory.basemodel import BaseModel
from ailedger.factory.data import Example
from ailedger.factory.worker_base import BaseRef

Job = tuple[int, list[int], list[Example | None]]  # (first record, checkpoints to compute, the chunk's examples)


@dataclass(frozen=True)
class Source:
    """What a worker needs to rebuild the featurizer: the base, where the adapter is, and the settings."""

    base: BaseRef
    adapter_dir: str
    config: InfluenceConfig


class _Featurizer:
    def __init__(self, src: Source) -> None:
        base = src.base.resident()
        info = validate_adapter(src.adapter_dir, base.info)
        self.ckpts = adapter_checkpoints(info)
        self.grads = LoraGradients(base, info, src.config.optimizer_correction, src.config.top_layers)
        self.projection = SparseProjection(self.grads.shapes, src.config.k, src.config.seed, src.config.nnz)


def featurize_task(job: Job, src: Source) -> list[F32]:
    """One Ray task: a chunk's feature blocks, one per checkpoint it lists."""
    f = per_worker(("influence", src), lambda: _Featurizer(src))
    _, todo, chunk = job
    return featurize_chunk(f.grads, f.projection, f.ckpts, chunk, todo)


def featurize_on(cluster: Cluster, info: AdapterInfo, base: BaseModel, config: InfluenceConfig,
                 jobs: Sequence[Job]) -> Iterator[list[F32]]:
    """Each job's blocks, in the jobs' order, computed by the cluster's workers."""
    src = Source(BaseRef.of(base), str(info.path), config)
    return imap_ordered(featurize_task, jobs, src, window=2 * cluster.workers, total=len(jobs))
