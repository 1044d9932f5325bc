"""The serving benchmark: what many LoRA adapters in one batch cost, against the base model and PEFT.

Everything runs on the real SmolLM2-135M-Instruct in fp32 (but the opt-in bf16 rows) on the CPU
(with `--quick` too: fewer tokens and a shorter online run, never the tiny model), with seeded
random rank-8 adapters on the attention projections (`serving/synthetic.random_adapter`, the
layout `train` writes).

(a) Closed batch: 16 concurrent greedy requests (N new tokens each: 64, or 16 with `--quick`)
through the engine with no adapter, all on one adapter, and spread over 4 and 16 adapters; then
the same 16-adapter load through PEFT's mixed batch (`generate(..., adapter_names=...)`, one
left-padded batch) and through PEFT's `set_adapter`, grouped per adapter (each adapter's requests
as one batch after `set_adapter`; with 16 requests over 16 adapters every group is one request).
With `--quick` the engine runs and PEFT's mixed batch are timed twice and the faster run kept.
`tokens_match_peft` is the share of the 16 requests whose greedy tokens all equal PEFT's mixed batch.
The opt-in faster base, reported apart and never mixed into the figures above: the no-adapter and
16-adapter loads again on a bf16 copy of the base (LoRA slots in bf16 too), its speed over fp32,
`bf16_tokens_match_fp32` (requests whose greedy tokens all equal the fp32 engine's) and
`bf16_prefix_agreement` (the share of tokens generated before each request's first divergence).
(b) Online: seeded Poisson arrivals at a rate above what either side serves, prompts of 16-256
tokens and outputs of 8-128 (smaller with `--quick`) over 16 adapters, fed on the same schedule
to the engine (continuous batching on its own thread), to the same engine through the
OpenAI-compatible HTTP API, and to a baseline loop that takes up to 16 waiting requests at a time
through PEFT's mixed `generate` (each batch runs to its longest request). The HTTP pass is the real
app (`serving.stack.Stack.app`, uvicorn on a loopback port in a thread) over the very engine the
other passes use: the whole benchmark is built by `build_stack` from a `Catalog.from_directory` of
the adapter directories (each served as `NAME@1`; the engine knows adapters by hash), so one model
copy serves every pass. Its client (httpx, one asyncio task per request, in this process) sends
streaming `/v1/completions` with token-id prompts, `temperature` 0 and the request's `max_tokens`;
the app is built with `stop_ids=()` so, like the other passes, every request runs its full length
(checked from the usage chunk). TTFT is taken at the first chunk with text, end-to-end at `[DONE]`.
The engine passes run without a detokenizer; the HTTP pass puts the API's back (it streams text),
so `http_vs_engine` counts detokenizing, the event loops, SSE and the client's parsing, all sharing
the 2 cores and the GIL with the model's step thread.
(c) Adapter cold load: p50 over 20 loads of a rank-8 adapter through `AdapterCache` (register,
acquire until it holds a slot, which includes reading and checking the files; then evict), and
the adapter's resident bytes.

Not covered yet: int8 and `torch.compile` base forwards.

Run it as `ailedger bench serving [--quick]` or `python -m bench.serving [--quick]`; the last line
of stdout is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from rich.console import Console
from rich.table import Table

import bench
from ailedger.factory.basemodel import BaseModel, load_base
from ailedger.serving.adapters import AdapterCache
from ailedger.serving.catalog import Catalog
from ailedger.serving.engine import Engine, Generation, Request
from ailedger.serving.openai_api import decoder
from ailedger.serving.stack import Stack, build_stack, served_base
from ailedger.serving.synthetic import random_adapter
from bench._serving_http import serve_app, stream_schedule

N_REQ, N_ADAPTERS, RANK, MAX_BATCH = 16, 16, 8, 16
FULL_TOKENS, QUICK_TOKENS = 64, 16
LOAD_REPEATS = 20
TARGETS = {"mixed16_vs_base": (">=", 0.9), "vs_peft_mixed": (">=", 1.4), "tokens_match_peft": (">=", 0.9),
           "online_vs_peft": (">=", 2.0), "p95_latency_vs_peft": ("<=", 0.5), "adapter_load_ms_p50": ("<=", 50.0)}
# (requests, prompt lengths, output lengths, arrivals per second)
FULL_ONLINE = (96, (16, 256), (8, 128), 8.0)
QUICK_ONLINE = (16, (16, 64), (8, 16), 16.0)
TOPICS = ["the sea", "bread", "a train station", "winter", "bees", "a library", "rain", "chess", "the moon",
          "a market", "bicycles", "mountains", "tea", "a lighthouse", "clocks", "gardens"]

_err = Console(stderr=True)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def prompts_for(base: BaseModel) -> list[list[int]]:
    tok = base.tokenizer
    return [list(tok(f"Write a short note about {t}, in {i % 3 + 2} sentences.")["input_ids"])
            for i, t in enumerate(TOPICS[:N_REQ])]


def left_pad(prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, int]:
    n = max(len(p) for p in prompts)
    ids = torch.tensor([[0] * (n - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (n - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask, n


def peft_model(base_dir: str, dirs: dict[str, Path]) -> PeftModel:
    names = list(dirs)
    ref = PeftModel.from_pretrained(load_base(base_dir).model, str(dirs[names[0]]), adapter_name=names[0])
    for n in names[1:]:
        ref.load_adapter(str(dirs[n]), adapter_name=n)
    ref.eval()
    ref.generation_config.eos_token_id = None  # like the engine without stop ids: every request runs its length
    return ref


def peft_generate(ref: PeftModel, prompts: list[list[int]], new_tokens: int, adapters: list[str],
                  streamer: Any = None) -> list[list[int]]:
    ids, mask, n = left_pad(prompts)
    out = ref.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                       do_sample=False, adapter_names=adapters, pad_token_id=0, streamer=streamer)
    return [out[i, n:].tolist() for i in range(len(prompts))]


def peft_set_adapter(ref: PeftModel, prompts: list[list[int]], new_tokens: int,
                     adapters: list[str]) -> list[list[int]]:
    """Grouped per adapter: set_adapter, then one batch of that adapter's requests."""
    result: list[list[int]] = [[] for _ in prompts]
    for name in dict.fromkeys(adapters):
        rows = [i for i, a in enumerate(adapters) if a == name]
        ref.set_adapter(name)
        ids, mask, n = left_pad([prompts[i] for i in rows])
        out = ref.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                           do_sample=False, pad_token_id=0)
        for j, i in enumerate(rows):
            result[i] = out[j, n:].tolist()
    return result


def measure_load(cache: AdapterCache, adapter_id: str) -> tuple[float, int]:
    """p50 ms of a cold load (file read and check on the loader thread, then the slot copy) and its bytes."""
    times, size = [], 0
    for _ in range(LOAD_REPEATS + 1):
        cache.evict(adapter_id)
        t0 = time.perf_counter()
        slot = cache.acquire(adapter_id)
        while slot is None:
            time.sleep(0.0002)
            cache.poll()
            slot = cache.acquire(adapter_id)
        times.append(time.perf_counter() - t0)
        size = cache.resident()[adapter_id]
        cache.release(adapter_id)
    return statistics.median(times[1:]) * 1000, size  # the first load warms the file cache and imports


def closed_batch(engine: Engine, ref_factory: Callable[[], PeftModel], prompts: list[list[int]], names: list[str],
                 ids: dict[str, str], new_tokens: int,
                 repeats: int) -> tuple[dict[str, float], PeftModel, list[list[int]]]:
    def engine_run(adapters: list[str | None]) -> list[list[int]]:
        gens = engine.generate([Request(p, new_tokens, None if a is None else ids[a])
                                for p, a in zip(prompts, adapters, strict=True)])
        return [g.tokens for g in gens]

    loads: dict[str, list[str | None]] = {
        "base": [None] * N_REQ, "one": [names[0]] * N_REQ,
        "mixed4": [names[i % 4] for i in range(N_REQ)], "mixed16": list(names[:N_REQ])}
    total = N_REQ * new_tokens
    figures: dict[str, float] = {}
    with torch.inference_mode():
        engine.generate([Request(p, 2, ids[a]) for p, a in zip(prompts, names, strict=True)])  # warm-up, loads slots
        ours: list[list[int]] = []
        for label, adapters in loads.items():
            _err.print(f"[dim]engine: {label}…[/]")
            runs = [timed(lambda a=adapters: engine_run(a)) for _ in range(repeats)]  # best of: another job may run
            toks, secs = runs[0][0], min(r[1] for r in runs)
            figures[f"engine_{label}_tok_per_s"] = total / secs
            if label == "mixed16":
                ours = toks
    _err.print("[dim]loading PEFT with 16 adapters…[/]")
    ref = ref_factory()
    mixed = list(names[:N_REQ])
    with torch.inference_mode():
        peft_generate(ref, prompts, 2, mixed)  # warm-up
        _err.print("[dim]PEFT: mixed batch…[/]")
        runs = [timed(lambda: peft_generate(ref, prompts, new_tokens, mixed)) for _ in range(repeats)]
        want, secs = runs[0][0], min(r[1] for r in runs)
        figures["peft_mixed_tok_per_s"] = total / secs
        _err.print("[dim]PEFT: set_adapter per adapter group…[/]")
        _, secs = timed(lambda: peft_set_adapter(ref, prompts, new_tokens, mixed))
        figures["peft_set_adapter_tok_per_s"] = total / secs
    figures["tokens_match_peft"] = sum(a == b for a, b in zip(ours, want, strict=True)) / N_REQ
    figures["mixed16_vs_base"] = figures["engine_mixed16_tok_per_s"] / figures["engine_base_tok_per_s"]
    figures["one_vs_base"] = figures["engine_one_tok_per_s"] / figures["engine_base_tok_per_s"]
    figures["vs_peft_mixed"] = figures["engine_mixed16_tok_per_s"] / figures["peft_mixed_tok_per_s"]
    figures["vs_peft_set_adapter"] = figures["engine_mixed16_tok_per_s"] / figures["peft_set_adapter_tok_per_s"]
    figures["peft_mixed_vs_base"] = figures["peft_mixed_tok_per_s"] / figures["engine_base_tok_per_s"]
    return figures, ref, ours


def bf16_closed_batch(catalog: Catalog, prompts: list[list[int]], names: list[str], ids: dict[str, str],
                      new_tokens: int, repeats: int, fp32_tokens: list[list[int]]) -> dict[str, float]:
    """The opt-in faster base: the closed batch again on a bf16 copy of the base (its LoRA slots bf16 too).

    Never what the fp32 figures measure: its own figures, with how far its greedy tokens follow fp32's.
    """
    base = load_base("smollm2", dtype=torch.bfloat16)
    stack = build_stack(base, catalog, max_batch=MAX_BATCH, max_slots=N_ADAPTERS + 1)
    engine = stack.engine
    engine.decode = None
    figures: dict[str, float] = {}
    tokens: list[list[int]] = []
    try:
        with torch.inference_mode():
            engine.generate([Request(p, 2, ids[a]) for p, a in zip(prompts, names, strict=True)])  # warm-up
            for label, adapters in (("base", [None] * N_REQ), ("mixed16", list(names[:N_REQ]))):
                _err.print(f"[dim]engine bf16: {label}…[/]")
                requests = [Request(p, new_tokens, None if a is None else ids[a])
                            for p, a in zip(prompts, adapters, strict=True)]
                runs = [timed(lambda r=requests: engine.generate(r)) for _ in range(repeats)]
                figures[f"engine_bf16_{label}_tok_per_s"] = N_REQ * new_tokens / min(t for _, t in runs)
                if label == "mixed16":
                    tokens = [g.tokens for g in runs[0][0]]
    finally:
        stack.close()
    agree = [next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(a))
             for a, b in zip(tokens, fp32_tokens, strict=True)]
    figures["bf16_tokens_match_fp32"] = sum(n == new_tokens for n in agree) / N_REQ
    figures["bf16_prefix_agreement"] = sum(agree) / (N_REQ * new_tokens)  # share of tokens before the first divergence
    return figures


def online_workload(quick: bool, names: list[str]) -> tuple[list[tuple[float, list[int], int, str]], float]:
    n, (p_lo, p_hi), (o_lo, o_hi), rate = QUICK_ONLINE if quick else FULL_ONLINE
    rng = random.Random(7)
    t, work = 0.0, []
    for i in range(n):
        prompt = [rng.randrange(3, 49000) for _ in range(rng.randint(p_lo, p_hi))]
        work.append((t, prompt, rng.randint(o_lo, o_hi), names[i % len(names)]))
        t += rng.expovariate(rate)
    return work, rate


def summarize(arrive: list[float], first: list[float], done: list[float], tokens: int) -> dict[str, float]:
    ttft = sorted(f - a for a, f in zip(arrive, first, strict=True))
    e2e = sorted(d - a for a, d in zip(arrive, done, strict=True))

    def pct(xs: list[float], q: float) -> float:
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    return {"tok_per_s": tokens / (max(done) - min(arrive)), "ttft_p50_s": pct(ttft, 0.5),
            "ttft_p95_s": pct(ttft, 0.95), "e2e_p50_s": pct(e2e, 0.5), "e2e_p95_s": pct(e2e, 0.95)}


def online_engine(engine: Engine, work: list[tuple[float, list[int], int, str]],
                  ids: dict[str, str]) -> dict[str, float]:
    n = len(work)
    first, done = [0.0] * n, [0.0] * n
    gens: list[Generation] = []
    engine.start()
    t0 = time.perf_counter()
    try:
        for i, (at, prompt, out, adapter) in enumerate(work):
            delay = t0 + at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

            def on_token(gen: Generation, _tok: int, i: int = i) -> None:
                if len(gen.tokens) == 1:
                    first[i] = time.perf_counter() - t0

            def on_done(_gen: Generation, i: int = i) -> None:
                done[i] = time.perf_counter() - t0

            gens.append(engine.submit(Request(prompt, out, ids[adapter], on_token=on_token, on_done=on_done)))
        for g in gens:
            g.done.wait()
    finally:
        engine.stop()
    if any(g.finish_reason != "length" for g in gens):
        raise RuntimeError("an online request did not finish by length")
    return summarize([w[0] for w in work], first, done, sum(w[2] for w in work))


def online_http(stack: Stack, work: list[tuple[float, list[int], int, str]]) -> dict[str, float]:
    """The same schedule as streaming `/v1/completions` through the real app over `stack`'s engine."""
    engine = stack.engine
    engine.decode = decoder(stack.base.tokenizer)  # the API streams text: detokenizing is part of its cost
    app = stack.app(stop_ids=(), max_pending=len(work) + 1)  # no stop ids: every request runs its length
    engine.start()
    try:
        with serve_app(app) as url:
            first, done = asyncio.run(stream_schedule(url, work))
    finally:
        engine.stop()
        engine.decode = None
    return summarize([w[0] for w in work], first, done, sum(w[2] for w in work))


class _FirstToken:
    """A generate streamer that notes when the first new tokens come (the first `put` is the prompt)."""

    def __init__(self) -> None:
        self.puts = 0
        self.at = 0.0

    def put(self, _value: torch.Tensor) -> None:
        self.puts += 1
        if self.puts == 2:
            self.at = time.perf_counter()

    def end(self) -> None:
        pass


def online_peft(ref: PeftModel, work: list[tuple[float, list[int], int, str]]) -> dict[str, float]:
    n = len(work)
    first, done = [0.0] * n, [0.0] * n
    t0 = time.perf_counter()
    nxt = 0
    with torch.inference_mode():
        while nxt < n:
            now = time.perf_counter() - t0
            if work[nxt][0] > now:
                time.sleep(work[nxt][0] - now)
                now = time.perf_counter() - t0
            batch = []
            while nxt < n and len(batch) < MAX_BATCH and work[nxt][0] <= now:
                batch.append(nxt)
                nxt += 1
            streamer = _FirstToken()
            peft_generate(ref, [work[i][1] for i in batch], max(work[i][2] for i in batch),
                          [work[i][3] for i in batch], streamer=streamer)
            end = time.perf_counter() - t0
            for i in batch:
                first[i], done[i] = streamer.at - t0, end
    return summarize([w[0] for w in work], first, done, sum(w[2] for w in work))


def run(quick: bool) -> dict[str, Any]:
    """Run every measurement once, print a table, and return the figures."""
    new_tokens = QUICK_TOKENS if quick else FULL_TOKENS
    torch.manual_seed(0)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ailedger-bench-serving-") as tmp:
        _err.print("[dim]loading SmolLM2-135M-Instruct (fp32) and writing 16 rank-8 adapters…[/]")
        base = load_base("smollm2")
        base_dir = base.info.path
        names = [f"a{i}" for i in range(N_ADAPTERS)]
        root = Path(tmp) / "adapters"
        dirs = {n: random_adapter(base, root / n, seed=100 + i, rank=RANK) for i, n in enumerate(names)}
        prompts = prompts_for(base)
        base.model.eval()
        catalog = Catalog.from_directory(served_base(base), root)  # each directory served as NAME@1
        ids = {a.name: a.adapter_hash for a in catalog.served()}  # the engine's cache knows adapters by hash
        stack = build_stack(base, catalog, max_batch=MAX_BATCH, max_slots=N_ADAPTERS + 1)
        engine, cache = stack.engine, stack.cache
        engine.decode = None  # the engine passes measure the model and the scheduler alone (see online_http)

        _err.print(f"[dim]adapter cold loads ({LOAD_REPEATS}, after one warm-up)…[/]")
        load_ms, size = measure_load(cache, ids[names[0]])
        cache.evict(ids[names[0]])

        figures, ref, fp32_tokens = closed_batch(engine, lambda: peft_model(base_dir, dirs), prompts, names, ids,
                                                 new_tokens, repeats=2 if quick else 1)
        figures.update(bf16_closed_batch(catalog, prompts, names, ids, new_tokens, 2 if quick else 1, fp32_tokens))
        figures["bf16_vs_fp32_base"] = figures["engine_bf16_base_tok_per_s"] / figures["engine_base_tok_per_s"]
        figures["bf16_vs_fp32_mixed16"] = figures["engine_bf16_mixed16_tok_per_s"] / figures["engine_mixed16_tok_per_s"]

        work, rate = online_workload(quick, names)
        _err.print(f"[dim]online: {len(work)} requests at {rate}/s through the engine…[/]")
        eng_online = online_engine(engine, work, ids)
        _err.print("[dim]online: the same schedule through the HTTP API (streaming /v1/completions)…[/]")
        http_online = online_http(stack, work)
        _err.print("[dim]online: the same schedule through PEFT mixed batches of up to 16…[/]")
        peft_online = online_peft(ref, work)
        stack.close()

    result: dict[str, Any] = {"name": "serving", "model": "smollm2-135m-instruct fp32", "device": "cpu",
                              "threads": torch.get_num_threads(), "requests": N_REQ, "new_tokens": new_tokens,
                              "adapters": N_ADAPTERS, "rank": RANK, "set_adapter_mode": "grouped per adapter"}
    result.update({k: round(v, 4) for k, v in figures.items()})
    result["online_vs_peft"] = round(eng_online["tok_per_s"] / peft_online["tok_per_s"], 4)
    result["p95_latency_vs_peft"] = round(eng_online["e2e_p95_s"] / peft_online["e2e_p95_s"], 4)
    result["online_requests"] = len(work)
    result["online_rate_per_s"] = rate
    result.update({f"online_engine_{k}": round(v, 4) for k, v in eng_online.items()})
    result.update({f"online_peft_{k}": round(v, 4) for k, v in peft_online.items()})
    result.update({f"online_http_{k}": round(v, 4) for k, v in http_online.items()})
    result["http_vs_engine"] = round(http_online["tok_per_s"] / eng_online["tok_per_s"], 4)
    result["http_p95_latency_vs_engine"] = round(http_online["e2e_p95_s"] / eng_online["e2e_p95_s"], 4)
    result["adapter_load_ms_p50"] = round(load_ms, 3)
    result["bytes_per_adapter"] = size
    result["targets"] = {k: f"{op} {v}" for k, (op, v) in TARGETS.items()}
    result["seconds"] = round(time.perf_counter() - started, 1)
    print_table(result, quick)
    return result


def _target(r: dict[str, Any], key: str, text: str) -> str:
    op, goal = TARGETS[key]
    met = r[key] >= goal if op == ">=" else r[key] <= goal
    return f"[{'green' if met else 'red'}]{text}[/]"


def print_table(r: dict[str, Any], quick: bool) -> None:
    on = f"{r['online_requests']} req at {r['online_rate_per_s']}/s"
    table = Table(title=f"serving benchmark: SmolLM2-135M fp32 on CPU ({r['threads']} threads), {r['requests']} "
                        f"requests x {r['new_tokens']} tokens, rank-{r['rank']} adapters"
                        + (" (--quick)" if quick else ""),
                  caption="set_adapter: grouped per adapter (16 adapters, so one request per group). "
                          "HTTP: streaming /v1/completions over the same engine, client in-process. "
                          "bf16: opt-in, its own rows. Not covered: int8/compile.")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target / what it covers")
    rows = [
        ("engine base", f"{r['engine_base_tok_per_s']:.1f} tok/s", "no adapter"),
        ("engine 1 adapter", f"{r['engine_one_tok_per_s']:.1f} tok/s", f"{r['one_vs_base']:.3f}x base"),
        ("engine 4 adapters", f"{r['engine_mixed4_tok_per_s']:.1f} tok/s", ""),
        ("engine 16 adapters", f"{r['engine_mixed16_tok_per_s']:.1f} tok/s", ""),
        ("PEFT mixed 16", f"{r['peft_mixed_tok_per_s']:.1f} tok/s", f"{r['peft_mixed_vs_base']:.3f}x engine base"),
        ("PEFT set_adapter", f"{r['peft_set_adapter_tok_per_s']:.1f} tok/s", "grouped per adapter"),
        ("mixed16_vs_base", _target(r, "mixed16_vs_base", f"{r['mixed16_vs_base']:.3f}"), "≥ 0.9"),
        ("vs_peft_mixed", _target(r, "vs_peft_mixed", f"{r['vs_peft_mixed']:.3f}"), "≥ 1.4"),
        ("vs_peft_set_adapter", f"{r['vs_peft_set_adapter']:.3f}", "engine 16 / PEFT set_adapter"),
        ("tokens_match_peft", _target(r, "tokens_match_peft", f"{r['tokens_match_peft']:.3f}"), "≥ 0.9"),
        ("engine bf16 base", f"{r['engine_bf16_base_tok_per_s']:.1f} tok/s",
         f"opt-in; {r['bf16_vs_fp32_base']:.3f}x fp32 base"),
        ("engine bf16 16 adapters", f"{r['engine_bf16_mixed16_tok_per_s']:.1f} tok/s",
         f"{r['bf16_vs_fp32_mixed16']:.3f}x fp32 16 adapters"),
        ("bf16_tokens_match_fp32", f"{r['bf16_tokens_match_fp32']:.3f}",
         f"whole greedy answers equal; {r['bf16_prefix_agreement']:.3f} of tokens before divergence"),
        ("online engine", f"{r['online_engine_tok_per_s']:.1f} tok/s",
         f"{on}; e2e p95 {r['online_engine_e2e_p95_s']:.2f} s, ttft p95 {r['online_engine_ttft_p95_s']:.2f} s"),
        ("online PEFT", f"{r['online_peft_tok_per_s']:.1f} tok/s",
         f"batches ≤ 16; e2e p95 {r['online_peft_e2e_p95_s']:.2f} s, ttft p95 {r['online_peft_ttft_p95_s']:.2f} s"),
        ("online HTTP", f"{r['online_http_tok_per_s']:.1f} tok/s",
         f"SSE; e2e p95 {r['online_http_e2e_p95_s']:.2f} s, ttft p95 {r['online_http_ttft_p95_s']:.2f} s"),
        ("online_vs_peft", _target(r, "online_vs_peft", f"{r['online_vs_peft']:.3f}"), "≥ 2.0"),
        ("http_vs_engine", f"{r['http_vs_engine']:.3f}",
         f"HTTP / engine throughput; e2e p95 {r['http_p95_latency_vs_engine']:.3f}x"),
        ("p95_latency_vs_peft", _target(r, "p95_latency_vs_peft", f"{r['p95_latency_vs_peft']:.3f}"),
         "≤ 0.5 (end-to-end)"),
        ("adapter_load_ms_p50", _target(r, "adapter_load_ms_p50", f"{r['adapter_load_ms_p50']:.2f} ms"),
         f"≤ 50, p50 of {LOAD_REPEATS} cold loads"),
        ("bytes_per_adapter", f"{r['bytes_per_adapter']:,}", "resident, rank 8, q/k/v/o"),
    ]
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    sys.exit(bench.main(run, sys.argv[1:]))
