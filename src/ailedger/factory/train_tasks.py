"""A training job as a Ray task: the same `train` on a cluster worker, the same adapter bit for bit.

Fine-tuning is one sequential loop, so a job is one task (a cluster runs many jobs side by side,
not one job faster). The worker loads the caller's base under the caller's identity
(`worker_base`) and runs `factory.train.train` with the same spec, records and output directory;
training is seeded and deterministic, so the adapter's tensors, hash and card are what a local run
writes (the tests compare them). The output directory must be one the worker can write: on one
machine it is the same directory; on a cluster, a shared filesystem. Checkpoints land there as
usual, so a job whose worker died is retried by Ray and resumes from its last checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.cluster import Cluster, map_ordered
from ailedger.factory.basemodel import BaseModel
from ailedger.factory.train import StepCallback, TrainResult, TrainSpec, train
from ailedger.factory.worker_base import BaseRef


@dataclass(frozen=True)
class TrainJob:
    spec: TrainSpec
    records: list[dict[str, Any]]
    base: BaseRef  # the caller's base: the adapter's card records its identity, name included
    out_dir: str
    resume: bool
    keep: int | None


def train_task(job: TrainJob, _: None) -> TrainResult:
    """One Ray task: the job trained on this worker's copy of the base (loaded once per worker)."""
    base = job.base.resident()
    return train(job.spec, job.records, base, job.out_dir, resume=job.resume, keep=job.keep)


def train_on(cluster: Cluster | None, spec: TrainSpec, records: Sequence[dict[str, Any]], base: BaseModel,
             out_dir: Path | str, resume: bool = True, keep: int | None = None,
             on_step: StepCallback | None = None) -> TrainResult:
    """`train(spec, records, base, out_dir)` as a task on `cluster`; in this process when there is none.

    `on_step` is called in this process only: a task on the cluster reports no steps.
    """
    if cluster is None:
        return train(spec, records, base, out_dir, on_step=on_step, resume=resume, keep=keep)
    job = TrainJob(spec, list(records), BaseRef.of(base), str(out_dir), resume, keep)
    (result,) = map_ordered(train_task, [job], None)
    return result
