"""`ailedger bench ray`: the attribution index of one adapter and snapshot, in one process and on a local Ray cluster.

Set-up: a fictional Datanet from `attribution.facts.generate_facts` (chat records: a question and a
paraphrased answer; 48 records, 16 with `--quick`), a one-epoch LoRA fine-tune of SmolLM2-135M-Instruct
on it with two checkpoints,
then `attribution.influence.build_index` twice with the same settings (k 2048, the top 6 blocks,
the same chunks of records):

- single: this process, as `ailedger attribution index` runs it (torch's default thread count);
- ray: a local Ray head on 127.0.0.1 with 2 worker CPUs, each worker one torch thread, the chunks
  as Ray tasks (`--ray auto`).

`ray_s` is the Ray build from the moment the head is up: it includes the workers loading SmolLM2
and the adapter, which every build pays; the head's own start is reported apart (`ray_start_s`),
since a real cluster is started once for many builds. About 5 s of `ray_s` is each worker's first
task importing torch, transformers and PEFT and loading the model; `ray_warm_s` is a second build on
the same cluster, whose workers kept them (a long-lived cluster's steady state), reported beside
the target's figure, not instead of it. `identical` is true when the index files have the same root
(and the same bytes). The last line of stdout is the JSON of figures.
"""

from __future__ import annotations

import math
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


def run(quick: bool) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    cfg = InfluenceConfig(chunk=sizes["chunk"])
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as name:
        tmp = Path(name)
        _err.print("[dim]fine-tuning SmolLM2 on the generated Datanet…[/]")
        base, adapter, records, hashes, train_s = _adapter(tmp, sizes)
        _err.print(f"[dim]index, single process ({torch.get_num_threads()} torch threads), {len(records)} records…[/]")
        t = time.perf_counter()
        single = build_index(adapter, base, records, hashes, tmp / "single.bin", cfg)
        single_s = time.perf_counter() - t
        _err.print(f"[dim]index, local Ray cluster of {WORKERS} workers…[/]")
        t = time.perf_counter()
        with connect(AUTO, num_cpus=WORKERS) as cluster:
            start_s = time.perf_counter() - t
            t = time.perf_counter()
            on_ray = build_index(adapter, base, records, hashes, tmp / "ray.bin", cfg, cluster=cluster)
            ray_s = time.perf_counter() - t
            _err.print("[dim]index again on the same cluster (workers hold torch and the model)…[/]")
            t = time.perf_counter()
            again = build_index(adapter, base, records, hashes, tmp / "ray-warm.bin", cfg, cluster=cluster)
            warm_s = time.perf_counter() - t
        same_bytes = (tmp / "single.bin").read_bytes() == (tmp / "ray.bin").read_bytes()
    out: dict[str, Any] = {
        "name": "ray", "quick": quick, "records": len(records), "checkpoints": len(single.steps),
        "chunks": math.ceil(len(records) / cfg.chunk), "k": cfg.k, "top_layers": cfg.top_layers,
        "single_threads": torch.get_num_threads(), "ray_workers": WORKERS, "ray_threads_per_worker": 1,
        "single_s": single_s, "ray_s": ray_s, "ray_start_s": start_s, "ray_speedup": single_s / ray_s,
        "ray_warm_s": warm_s, "ray_warm_speedup": single_s / warm_s,
        "identical": single.root == on_ray.root == again.root and same_bytes, "index_root": single.root.hex(),
        "ray_index_root": on_ray.root.hex(), "train_s": train_s}
    out["targets_met"] = {"identical": out["identical"], "ray_speedup": out["ray_speedup"] >= TARGETS["ray_speedup"]}
    bench.print_measures(f"attribution index: one process vs a local Ray cluster ({len(records)} SmolLM2 records, "
                         f"{out['checkpoints']} checkpoints)", [
        ("single process", f"{single_s:.1f} s", f"build_index here, {out['single_threads']} torch threads"),
        ("Ray, 2 workers", f"{ray_s:.1f} s", "the same chunks as Ray tasks, 1 thread each, workers load the model"),
        ("Ray head start", f"{start_s:.1f} s", "ray.init of a local head on 127.0.0.1 (not in ray_s)"),
        ("speed-up", f"{out['ray_speedup']:.2f}x", f"single / Ray (target >= {TARGETS['ray_speedup']})"),
        ("Ray, warm workers", f"{warm_s:.1f} s", f"a second build on the same cluster: {out['ray_warm_speedup']:.2f}x "
                                                 "(workers keep torch and the model; not the target's figure)"),
        ("identical", str(out["identical"]), f"index roots equal ({out['index_root'][:16]}…) and same bytes"),
    ])
    return out


if __name__ == "__main__":
    sys.exit(bench.main(run, sys.argv[1:]))
