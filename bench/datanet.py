"""The Datanet benchmark: every quality gate on planted synthetic data, against the named baselines.

Stages, all in one run on this machine (figures are only comparable within a run):
1. gates: the seeded synthetic stream (10% near-duplicates, 2% PII, 2% PII look-alikes, 2% off-topic,
   2% junk, 2% exact copies) through the gate runner, off-topic gate included, scored against the
   ground truth: near-duplicate, PII and off-topic recall/precision.
2. end to end: the same records written to a JSONL file and contributed through the real pipeline
   (read, every gate, blobs stored, `contribute` transactions signed, admitted and sealed into
   blocks of the embedded ledger) -> `records_per_s`; resident memory is sampled along the way to
   show it stays flat (the file is streamed, not loaded).
3. baselines: datasketch's MinHashLSH on the same texts with the same parameters (speedup and its
   recall/precision), and the full MiniLM against the distilled static model on one sample of
   honest and off-topic records (AUC of the cosine distance to the Datanet's centroid).

The off-topic centroid and threshold come from a separate stream of honest records that stands for
the Datanet's already-accepted data; the threshold is their 99.5th distance percentile.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

import bench
from ailedger.datanet.embedding import Embedder, full_minilm_embedder, static_embedder
from ailedger.datanet.gates.baseline import compare_with_datasketch
from ailedger.datanet.gates.offtopic import OffTopicGate
from ailedger.datanet.gates.records import record_text
from ailedger.datanet.gates.runner import GateConfig, GateRunner, RecordResult
from ailedger.datanet.synth import SCHEMA, SynthRecord, generate
from ailedger.datanet.synth.score import score

FULL, QUICK = 100_000, 20_000
PRIOR_RECORDS = 2_000
MINILM_SAMPLE = (1_200, 300)  # honest, off-topic records embedded by both models
SEED, PRIOR_SEED = 7, 99
_err = Console(stderr=True)


def auc(positive: npt.NDArray[np.floating], negative: npt.NDArray[np.floating]) -> float:
    """Probability that a random positive scores above a random negative (Mann-Whitney U, ties count half)."""
    from scipy.stats import rankdata

    n_pos, n_neg = len(positive), len(negative)
    if not n_pos or not n_neg:
        return 1.0
    ranks = rankdata(np.concatenate([positive, negative]), method="average")
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def offtopic_gate(embed: Embedder) -> tuple[OffTopicGate, float]:
    """The Datanet's off-topic gate, centred and calibrated on honest records of another stream."""
    prior = [record_text(s.record, None) for s in generate(PRIOR_RECORDS * 2, seed=PRIOR_SEED)
             if s.label == "honest"][:PRIOR_RECORDS]
    gate = OffTopicGate.calibrated(embed, prior)
    return gate, gate.threshold


class RecordingGate(OffTopicGate):
    """The off-topic gate, remembering the distances of the last chunk so they can be scored (AUC)."""

    last: dict[str, float]

    def distances(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        d = super().distances(texts)
        self.last = dict(zip(texts, d.tolist(), strict=True))
        return d


def stage_gates(n: int, gate: OffTopicGate) -> tuple[dict[str, float], float, float]:
    """Runner over the synthetic stream, scored; returns (scores, seconds, off-topic AUC)."""
    recording = RecordingGate(gate.embed, gate.centroid, gate.threshold)
    runner = GateRunner(GateConfig(schema=SCHEMA), offtopic=recording)
    distances: dict[str, list[float]] = {"honest": [], "off_topic": []}
    chunk: list[SynthRecord] = []

    def pairs() -> Iterator[tuple[SynthRecord, RecordResult]]:
        for s in generate(n, seed=SEED):
            chunk.append(s)
            if len(chunk) == runner.config.chunk_size:
                yield from flush()
        yield from flush()

    def flush() -> Iterator[tuple[SynthRecord, RecordResult]]:
        if not chunk:
            return
        recording.last = {}
        results = runner.check_chunk([s.record for s in chunk])
        for s in chunk:
            d = recording.last.get(record_text(s.record, None))
            if s.label in distances and d is not None:
                distances[s.label].append(d)
        out = list(zip(chunk, results, strict=True))
        chunk.clear()
        yield from out

    t0 = time.perf_counter()
    scores = score(pairs())
    elapsed = time.perf_counter() - t0
    return scores, elapsed, auc(np.array(distances["off_topic"]), np.array(distances["honest"]))


def stage_minilm(static: Embedder) -> dict[str, float]:
    """Full MiniLM vs the static model on the same honest/off-topic sample: AUC and records/s each."""
    honest: list[str] = []
    off: list[str] = []
    for s in generate(60_000, seed=SEED + 1):
        if s.label == "honest" and len(honest) < MINILM_SAMPLE[0]:
            honest.append(record_text(s.record, None))
        elif s.label == "off_topic" and len(off) < MINILM_SAMPLE[1]:
            off.append(record_text(s.record, None))
        if len(honest) >= MINILM_SAMPLE[0] and len(off) >= MINILM_SAMPLE[1]:
            break
    out: dict[str, float] = {}
    for name, make in (("static", lambda: static), ("full_minilm", full_minilm_embedder)):
        embed: Embedder = make()
        gate, _ = offtopic_gate(embed)
        t0 = time.perf_counter()
        d_off, d_honest = gate.distances(off), gate.distances(honest)
        out[f"{name}_records_per_s"] = (len(off) + len(honest)) / (time.perf_counter() - t0)
        out[f"{name}_auc"] = auc(d_off, d_honest)
    return out


def stage_datasketch(n: int) -> dict[str, float]:
    records: list[Any] = []
    truth: list[bool] = []
    for s in generate(n, seed=SEED):
        if s.label in ("junk",):
            continue  # the quality gate removes junk before the near-duplicate gate sees it
        records.append(s.record)
        truth.append(s.label == "near_dup")
    return compare_with_datasketch(records, truth=truth)


def run(quick: bool) -> dict[str, Any]:
    """Every stage once; prints the table and returns the figures."""
    from bench.datanet_e2e import end_to_end

    n = QUICK if quick else FULL
    _err.print("[dim]loading the static embedding (distilled from MiniLM on first use)…[/]")
    static = static_embedder(progress=lambda m: _err.print(f"[dim]{m}[/]"))
    gate, threshold = offtopic_gate(static)
    _err.print(f"[dim]stage 1: {n:,} records through every gate…[/]")
    scores, gates_s, static_auc = stage_gates(n, gate)
    with tempfile.TemporaryDirectory(prefix="ailedger-bench-dn-") as tmp:
        _err.print("[dim]stage 2: contributing the file end to end through the ledger…[/]")
        e2e = end_to_end(n, Path(tmp), gate)
    rss_after_e2e = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _err.print("[dim]stage 3: datasketch on the same texts; full MiniLM on a sample…[/]")
    ds = stage_datasketch(n)
    minilm = stage_minilm(static)
    result: dict[str, Any] = {
        "name": "datanet", "records": n,
        "records_per_s": round(e2e.get("records_per_s", 0.0), 1),
        "gates_records_per_s": round(n / gates_s, 1),
        "neardup_recall": round(scores["neardup_recall"], 4),
        "neardup_precision": round(scores["neardup_precision"], 4),
        "pii_recall": round(scores["pii_recall"], 4), "pii_precision": round(scores["pii_precision"], 4),
        "lookalike_false_rejection": round(scores["lookalike_false_rejection"], 4),
        "honest_false_rejection": round(scores["honest_false_rejection"], 4),
        "junk_caught": round(scores["junk_caught"], 4),
        "offtopic_recall": round(scores["offtopic_recall"], 4),
        "offtopic_precision": round(scores["offtopic_precision"], 4),
        "offtopic_threshold": round(threshold, 4),
        "offtopic_auc": round(static_auc, 4),
        "offtopic_auc_static_sample": round(minilm["static_auc"], 4),
        "offtopic_auc_full_minilm": round(minilm["full_minilm_auc"], 4),
        "static_embed_per_s": round(minilm["static_records_per_s"], 1),
        "full_minilm_embed_per_s": round(minilm["full_minilm_records_per_s"], 1),
        "ours_neardup_per_s": round(ds["ours_records_per_s"], 1),
        "datasketch_per_s": round(ds["datasketch_records_per_s"], 1),
        "speedup_vs_datasketch": round(ds["speedup_vs_datasketch"], 2),
        "datasketch_recall": round(ds.get("datasketch_recall", 0.0), 4),
        "datasketch_precision": round(ds.get("datasketch_precision", 0.0), 4),
        "peak_rss_mb": round(rss_after_e2e, 1),
        **{k: round(v, 2) for k, v in e2e.items() if k != "records_per_s"},
    }
    print_table(result)
    return result


def print_table(r: dict[str, Any]) -> None:
    targets = {"records_per_s": (2_000, ">="), "neardup_recall": (0.95, ">="), "neardup_precision": (0.95, ">="),
               "pii_recall": (0.98, ">="), "pii_precision": (0.95, ">="), "offtopic_auc": (0.95, ">="),
               "speedup_vs_datasketch": (3.0, ">=")}
    table = Table(title=f"datanet benchmark: {r['records']:,} synthetic records")
    for col in ("figure", "value", "target"):
        table.add_column(col, justify="right" if col != "figure" else "left")
    for key, value in r.items():
        if key in ("name", "records"):
            continue
        target = targets.get(key)
        mark = ""
        if target is not None:
            ok = value >= target[0]
            mark = f"[{'green' if ok else 'red'}]{target[1]} {target[0]}[/]"
        table.add_row(key, f"{value:,}" if isinstance(value, int | float) else str(value), mark)
    Console().print(table)


if __name__ == "__main__":
    sys.exit(bench.main(run, sys.argv[1:]))
