"""Gate checking of a large file as Ray tasks: each chunk of records screened by a worker, decided in order.

Screening (`runner.Screener`: canonical hash, schema, PII, quality, MinHash signature) judges each
record alone and is most of a gate run's time, so chunks go to Ray workers a few ahead of the
reader. The duplicate checks, which depend on every record before, stay in the caller's process
and take the screened chunks in stream order (`GateRunner.decide`), so the verdicts, hashes and
redactions are the ones a run without Ray gives. The chunks are the stream's own (`chunk_size`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ailedger.cluster import Cluster, imap_ordered, per_worker
from ailedger.datanet.gates.runner import GateConfig, Screened, Screener


def screen_task(chunk: tuple[int, list[Any]], config: GateConfig) -> Screened:
    """One Ray task: a chunk screened by this worker's gates (built once per worker and settings)."""
    screener = per_worker(("gates", repr(config)), lambda: Screener(config))
    base, records = chunk
    return screener.screen(base, records)


def screen_on(cluster: Cluster, config: GateConfig, chunks: Iterable[tuple[int, list[Any]]]) -> Iterator[Screened]:
    """The chunks (first record's index, records) screened on the cluster, in the chunks' order."""
    return imap_ordered(screen_task, chunks, config, window=2 * cluster.workers)
