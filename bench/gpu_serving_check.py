"""A device check of the serving engine's GPU path (run by hand on a lent GPU machine; not a test).

The SmolLM2 weights cannot travel to the device machine (it reaches no registry and the working tree
is capped), so the check builds a model of SmolLM2-135M's exact shape with seeded random weights
(fp32: hidden 576, 30 layers, 9 heads / 3 KV heads, MLP 1536, vocab 49152), 16 seeded rank-8
adapters, and compares the engine with PEFT on the same device: greedy tokens of a 16-request
mixed-adapter batch (64 new tokens each) must equal PEFT's `generate(adapter_names=...)`, and the
decode time of base-only, one-adapter and 16-adapter batches is measured, with PEFT's mixed batch
as the baseline. Prints one JSON line last. `--small` runs a reduced shape (for a CPU dry run).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import LlamaConfig, LlamaForCausalLM

from ailedger.factory.basemodel import load_base
from ailedger.factory.tiny import build_tiny
from ailedger.serving.adapters import AdapterCache
from ailedger.serving.engine import Engine, Request
from ailedger.serving.lora import inject
from ailedger.serving.synthetic import random_adapter

N_REQ, NEW_TOKENS, N_ADAPTERS = 16, 64, 16


def smol_shaped(out: Path, small: bool) -> Path:
    """A random model of SmolLM2-135M's shape, with the tiny model's tokenizer files beside it."""
    tok_dir = build_tiny(out / "tok", seed=1)
    cfg = LlamaConfig(hidden_size=576 if not small else 96, intermediate_size=1536 if not small else 256,
                      num_hidden_layers=30 if not small else 3, num_attention_heads=9 if not small else 3,
                      num_key_value_heads=3 if not small else 1, vocab_size=49152 if not small else 4096,
                      max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=100000.0,
                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # wider than HF's 0.02 so that greedy decoding is not one flat near-tie
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.08)
    d = out / "smol-shaped"
    model.save_pretrained(d, safe_serialization=True)
    for f in tok_dir.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")) or f.name == "chat_template.jinja":
            shutil.copy(f, d / f.name)
    return d


def timed(fn: Any, device: torch.device) -> tuple[Any, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main(argv: list[str]) -> int:
    small = "--small" in argv
    device = torch.device("cuda" if torch.cuda.is_available() and "--cpu" not in argv else "cpu")
    tmp = Path(tempfile.mkdtemp(prefix="ailedger-gpu-"))
    base_dir = smol_shaped(tmp, small)
    base = load_base(base_dir)
    names = [f"a{i}" for i in range(N_ADAPTERS)]
    dirs = {n: random_adapter(base, tmp / n, seed=100 + i, rank=8) for i, n in enumerate(names)}
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(3, 4000, (int(torch.randint(8, 40, (1,), generator=g)),), generator=g).tolist()
               for _ in range(N_REQ)]

    base.model.to(device).eval()
    slots = inject(base.model, max_slots=N_ADAPTERS + 1, max_rank=8)
    cache = AdapterCache(slots, 1 << 30, base.info)
    for n, d in dirs.items():
        cache.register(n, d)
    engine = Engine(base.model, slots, cache, max_batch=N_REQ)

    def run(adapters: list[str | None]) -> list[list[int]]:
        gens = engine.generate([Request(p, NEW_TOKENS, a) for p, a in zip(prompts, adapters, strict=True)])
        return [gen.tokens for gen in gens]

    with torch.no_grad():
        run(names)  # warm-up: loads every adapter into its slot, compiles nothing, fills caches
        results: dict[str, float] = {}
        for label, adapters in (("base", [None] * N_REQ), ("one", ["a0"] * N_REQ), ("mixed16", list(names))):
            toks, secs = timed(lambda a=adapters: run(a), device)
            results[f"{label}_s"] = secs
            if label == "mixed16":
                ours = toks
        ref = PeftModel.from_pretrained(load_base(base_dir).model, str(dirs[names[0]]), adapter_name=names[0])
        for n in names[1:]:
            ref.load_adapter(str(dirs[n]), adapter_name=n)
        ref.to(device).eval()
        ref.generation_config.eos_token_id = None  # the engine runs without stop ids: both make 64 tokens
        n = max(len(p) for p in prompts)
        ids = torch.tensor([[0] * (n - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (n - len(p)) + [1] * len(p) for p in prompts], device=device)

        def peft_generate() -> torch.Tensor:
            return ref.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=False,
                                adapter_names=list(names), pad_token_id=0)

        peft_generate()
        out, peft_s = timed(peft_generate, device)
    want = [out[i, n:].tolist() for i in range(N_REQ)]
    match = sum(a == b for a, b in zip(ours, want, strict=True)) / N_REQ
    report = {
        "name": "gpu_serving_check", "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "shape": "smollm2-135m (random weights)" if not small else "small", "requests": N_REQ,
        "new_tokens": NEW_TOKENS, "adapters": N_ADAPTERS, "torch": torch.__version__,
        "base_tok_per_s": N_REQ * NEW_TOKENS / results["base_s"],
        "mixed16_tok_per_s": N_REQ * NEW_TOKENS / results["mixed16_s"],
        "peft_mixed16_tok_per_s": N_REQ * NEW_TOKENS / peft_s,
        "mixed16_vs_base": results["base_s"] / results["mixed16_s"],
        "one_adapter_vs_base": results["base_s"] / results["one_s"],
        "vs_peft_mixed": peft_s / results["mixed16_s"],
        "tokens_match_peft": match,
    }
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
