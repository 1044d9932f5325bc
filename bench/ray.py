"""`ailedger bench ray`: the attribution index of one adapter and snapshot, in one process and on a local Ray cluster.

Set-up: a fictional Datanet from `attribution.facts.generate_facts` (chat records: a question and a
paraphrased answer; 48 records, 16 with `--quick`), a one-epoch LoRA fine-tune of SmolLM2-135M-Instruct
on it with two checkpoints,
then `attribution.influence.build_index` with the same settings (k 2048, the top 6 blocks, the
same chunks of records) on both sides:

- single: this process, as `ailedger attribution index` runs it (torch's default thread count);
- ray: a local Ray head on 127.0.0.1 with 2 worker CPUs, each worker one torch thread, the chunks
  as Ray tasks (`--ray auto`).

What is timed, and why it is the same on both sides. Each side is first in the state a process
that serves index builds is in: torch and the base model are in memory and it has built an index
before (of the adapter's copy in another directory, "the previous job"). The single process has
loaded SmolLM2 before its timer starts (it trained the adapter); a Ray worker has loaded it in the
previous job (`BaseRef.resident`). Everything this adapter needs is inside both timings: the
gradient model with the adapter's LoRA layers, the projection, reading the checkpoints, the
forward and backward passes, the part files and the finalisation. `single_s` and `ray_s` are those
builds, and `ray_speedup` their ratio (the target's figure).

A fresh cluster's first build is reported apart (`ray_cold_s`, `ray_cold_speedup`): there each
worker also imports torch, transformers and PEFT and loads SmolLM2 (about 6 s here), which the
single process had done before its timer started; the head's own start is `ray_start_s`.

Why `ray_ceiling`: the single process already uses every core through torch's threads, so on a
machine with as many cores as workers the most Ray can gain is how much worse torch does on many
threads than on one. The bench builds the index once more on one torch thread and reports
`ray_ceiling = workers x single_s / single_1thread_s`, the speed-up of perfectly parallel
one-thread workers that cost nothing to schedule; `ray_speedup` cannot exceed it on this machine.

`identical` is true when every build's index file has the same root and the same bytes. The last
line of stdout is the JSON of figures.
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

import bench
from ailedger.attribution.evaluate import fact_record
from ailedger.attribution.facts import generate_facts
from ailedger.attribution.influence import InfluenceConfig, build_index
from ailedger.attribution.influence_index import InfluenceIndex
from ailedger.cluster import AUTO, connect
from ailedger.core.merkle import merkle_root
from ailedger.datanet.gates.records import record_hash
from ailedger.factory.basemodel import load_base
from ailedger.factory.train import TrainSpec, train

_err = Console(stderr=True)
FULL = {"owners": 8, "facts_per_owner": 2, "paraphrases": 3, "chunk": 6}  # 48 records, 8 chunks
QUICK = {"owners": 4, "facts_per_owner": 2, "paraphrases": 2, "chunk": 4}  # 16 records, 4 chunks
WORKERS = 2
TARGETS = {"identical": True, "ray_speedup": 1.5}


def _adapter(tmp: Path, sizes: dict[str, int]) -> tuple[Any, Path, list[dict[str, Any]], list[bytes], float]:
    facts = generate_facts(sizes["owners"], sizes["facts_per_owner"], sizes["paraphrases"], 0, 0)
    records = [fact_record(f, p) for f in facts.facts for p in f.paraphrases]
    hashes = [record_hash(r) for r in records]
    base = load_base("smollm2")
    steps = math.ceil(len(records) / 4)  # one epoch, two checkpoints: the index, not the fine-tune, is measured
    spec = TrainSpec(base=base.info.name, datanet="bench-ray", version=1, snapshot_root=merkle_root(hashes).hex(),
                     rank=8, alpha=16, dropout=0.0, lr=5e-3, epochs=1, batch_size=4, max_len=128, seed=0,
                     checkpoint_every=math.ceil(steps / 2))
    t = time.perf_counter()
    out = tmp / "adapter"
    train(spec, records, base, out, resume=False)
    return base, out, records, hashes, time.perf_counter() - t


def _build(adapter: Path, base: Any, records: list[dict[str, Any]], hashes: list[bytes], out: Path,
           cfg: InfluenceConfig, cluster: Any = None) -> tuple[tuple[bytes, bytes], float]:
    """The index's (root, file bytes) and the build's seconds."""
    t = time.perf_counter()
    index = build_index(adapter, base, records, hashes, out, cfg, cluster=cluster)
    seconds = time.perf_counter() - t
    return (index.root, out.read_bytes()), seconds


def run(quick: bool) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    cfg = InfluenceConfig(chunk=sizes["chunk"])
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as name:
        tmp = Path(name)
        _err.print("[dim]fine-tuning SmolLM2 on the generated Datanet…[/]")
        base, adapter, records, hashes, train_s = _adapter(tmp, sizes)
        previous = tmp / "previous-job"  # the same adapter elsewhere: new to the workers' per-build caches
        shutil.copytree(adapter, previous)
        args = (base, records, hashes)
        threads = torch.get_num_threads()
        _err.print(f"[dim]index, single process ({threads} torch threads), {len(records)} records: the previous "
                   "job, then this one…[/]")
        _build(previous, *args, tmp / "single-previous.bin", cfg)
        single, single_s = _build(adapter, *args, tmp / "single.bin", cfg)
        checkpoints = len(InfluenceIndex.load(tmp / "single.bin").steps)
        _err.print("[dim]index, single process with 1 torch thread (what one Ray worker does)…[/]")
        torch.set_num_threads(1)
        try:
            one, one_s = _build(adapter, *args, tmp / "single-1.bin", cfg)
        finally:
            torch.set_num_threads(threads)
        _err.print(f"[dim]index, local Ray cluster of {WORKERS} workers: the previous job (cold), then this one…[/]")
        t = time.perf_counter()
        with connect(AUTO, num_cpus=WORKERS) as cluster:
            start_s = time.perf_counter() - t
            cold, cold_s = _build(previous, *args, tmp / "ray-previous.bin", cfg, cluster)
            on_ray, ray_s = _build(adapter, *args, tmp / "ray.bin", cfg, cluster)
    files = [single, one, cold, on_ray]
    out: dict[str, Any] = {
        "name": "ray", "quick": quick, "records": len(records), "checkpoints": checkpoints,
        "chunks": math.ceil(len(records) / cfg.chunk), "k": cfg.k, "top_layers": cfg.top_layers,
        "single_threads": threads, "ray_workers": WORKERS, "ray_threads_per_worker": 1,
        "single_s": single_s, "ray_s": ray_s, "ray_speedup": single_s / ray_s,
        "ray_cold_s": cold_s, "ray_cold_speedup": single_s / cold_s, "ray_start_s": start_s,
        "single_1thread_s": one_s, "thread_scaling": one_s / single_s, "ray_ceiling": WORKERS * single_s / one_s,
        "identical": all(f == single for f in files), "index_root": single[0].hex(), "train_s": train_s}
    out["targets_met"] = {"identical": out["identical"], "ray_speedup": out["ray_speedup"] >= TARGETS["ray_speedup"]}
    bench.print_measures(f"attribution index: one process vs a local Ray cluster ({len(records)} SmolLM2 records, "
                         f"{out['checkpoints']} checkpoints)", [
        ("single process", f"{single_s:.1f} s", f"build_index here, {out['single_threads']} torch threads"),
        ("Ray, 2 workers", f"{ray_s:.1f} s", "the same chunks as Ray tasks, 1 thread each, workers holding the "
                                             "base from the previous job"),
        ("speed-up", f"{out['ray_speedup']:.2f}x", f"single / Ray (target >= {TARGETS['ray_speedup']})"),
        ("Ray, first build", f"{cold_s:.1f} s", f"a fresh cluster's first job, workers importing torch and loading "
                                                f"SmolLM2: {out['ray_cold_speedup']:.2f}x"),
        ("Ray head start", f"{start_s:.1f} s", "ray.init of a local head on 127.0.0.1 (in neither build)"),
        ("single, 1 thread", f"{one_s:.1f} s", f"the same build on one torch thread: {out['thread_scaling']:.2f}x "
                                               "slower than on the machine's threads"),
        ("ceiling", f"{out['ray_ceiling']:.2f}x", f"{WORKERS} one-thread workers with no start, load or scheduling "
                                                  "cost (2 x single / single 1 thread)"),
        ("identical", str(out["identical"]), f"{len(files)} builds: one root ({out['index_root'][:16]}…), same "
                                             "bytes"),
    ])
    return out


if __name__ == "__main__":
    sys.exit(bench.main(run, sys.argv[1:]))
