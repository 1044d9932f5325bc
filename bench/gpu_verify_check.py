"""A device check of serving spot checks across devices (run by hand on a lent GPU machine; not a test).

docs/market.md says a serving check re-generates sampled requests greedily on the verifier's engine and
compares token by token. That is exact when both engines run the same kernels; this check measures what
happens when the provider serves on a GPU and the verifier re-runs on a CPU (or another GPU batch size).
A SmolLM2-135M-shaped model with seeded random weights (bench/gpu_serving_check.smol_shaped) serves N_REQ
prompts on the GPU engine, as a provider would, through provider.verify.generate; then
* the same device with another batch size re-generates every request (must match exactly), and
* a CPU engine re-generates every request: how many requests differ, and at which token the first does.
Prints one JSON line last. `--small` runs a reduced shape (for a CPU dry run, GPU replaced by CPU); `--flat`
re-draws the weights with HF's own std 0.02 (flatter logits, more near-ties).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tempfile
import types
from pathlib import Path
from typing import Any


def _stub_missing_signing() -> None:
    """The device image has no PyNaCl; nothing here signs, so an inert stand-in lets the imports load."""
    if importlib.util.find_spec("nacl") is not None:
        return
    for name in ("nacl", "nacl.bindings", "nacl.exceptions", "nacl.signing", "nacl.public", "nacl.secret",
                 "nacl.pwhash", "nacl.utils", "nacl.hash", "nacl.encoding"):
        mod = types.ModuleType(name)
        mod.__getattr__ = _inert(name)  # type: ignore[method-assign]
        sys.modules[name] = mod


def _inert(module: str) -> Any:
    def attr(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return sys.modules.get(f"{module}.{name}") or type(name, (Exception,), {})
    return attr


_stub_missing_signing()

import torch  # noqa: E402

from ailedger.factory.basemodel import load_base  # noqa: E402
from ailedger.provider.verify import Served, generate  # noqa: E402
from ailedger.serving.engine import Engine  # noqa: E402
from ailedger.serving.lora import inject  # noqa: E402
from bench.gpu_serving_check import smol_shaped  # noqa: E402

N_REQ, NEW_TOKENS = 32, 48


def engine_on(base_dir: Path, device: torch.device, max_batch: int) -> Engine:
    base = load_base(base_dir)
    base.model.to(device).eval()
    return Engine(base.model, inject(base.model, max_slots=2, max_rank=8), None, max_batch=max_batch)


def first_difference(a: list[int], b: list[int]) -> int | None:
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def compare(log: list[Served], engine: Engine) -> dict[str, Any]:
    again = generate(engine, [r.prompt for r in log], NEW_TOKENS, [], None)
    firsts = [first_difference(r.tokens, g.tokens) for r, g in zip(log, again, strict=True)]
    differing = [f for f in firsts if f is not None]
    return {"requests_differing": len(differing), "first_differing_tokens": sorted(differing)}


def main(argv: list[str]) -> int:
    small = "--small" in argv
    gpu = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tmp = Path(tempfile.mkdtemp(prefix="ailedger-verify-"))
    base_dir = smol_shaped(tmp, small)
    if "--flat" in argv:  # HF's own init (std 0.02): flatter logits, more near-ties for greedy decoding
        from transformers import LlamaForCausalLM

        model = LlamaForCausalLM.from_pretrained(str(base_dir))
        torch.manual_seed(1)
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() == 2:
                    p.normal_(0.0, 0.02)
        model.save_pretrained(base_dir, safe_serialization=True)
    g = torch.Generator().manual_seed(11)
    prompts = [torch.randint(3, 4000, (int(torch.randint(8, 40, (1,), generator=g)),), generator=g).tolist()
               for _ in range(N_REQ)]
    with torch.no_grad():
        log = generate(engine_on(base_dir, gpu, N_REQ), prompts, NEW_TOKENS, [], None)  # the provider
        same_device = compare(log, engine_on(base_dir, gpu, 4))  # a verifier on the same kind of device
        cpu = compare(log, engine_on(base_dir, torch.device("cpu"), N_REQ))  # a verifier on a CPU
    report = {"name": "gpu_verify_check", "device": torch.cuda.get_device_name(0) if gpu.type == "cuda" else "cpu",
              "shape": "smollm2-135m (random weights)" if not small else "small",
              "init_std": 0.02 if "--flat" in argv else 0.08, "torch": torch.__version__,
              "requests": N_REQ, "new_tokens": NEW_TOKENS,
              "same_device_other_batch": same_device, "gpu_provider_cpu_verifier": cpu}
    print(json.dumps(report), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
