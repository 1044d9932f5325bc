"""What a work report commits to, and how a verifier re-does the work and compares (docs/market.md, "Verified work").

A report's digest is the SHA-256 of a blob in the node's blob store, so the verifier fetches exactly what
was reported:
* training reported by plain report_work: the adapter's safetensors file as trained so far (a report_training
  is checked by re-running a few segments instead: spotcheck.py). The verifier re-runs the training (the
  real `factory.train`, same spec, same snapshot, same seed: the trainer is deterministic) and compares
  every LoRA tensor: equal names and shapes, and max |reported - re-run| <= TRAIN_TOLERANCE. The tolerance
  is meant for another machine's rounding (not measured across devices: `factory.train` runs on the CPU);
  a skipped or faked run differs by the size of the update itself, orders of magnitude more.
* serving: a request log (canonical JSON: each request's prompt token ids, max_tokens, stop ids, adapter
  and the tokens returned). The verifier draws SAMPLE requests with the check's seed, re-generates them
  greedily on its own engine and compares token by token; one different token fails the check. Greedy
  decoding of the same weights is deterministic, and the engine's batching is exact (serving/batchkv.py),
  so an honest provider's tokens match whoever else served alongside them; across an H100 and a CPU no
  token differed in bench/gpu_verify_check.py (docs/market.md says where that may not hold).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from safetensors.torch import load as load_tensors

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.serving.engine import Engine, Request

TRAIN_TOLERANCE = 1e-4
SAMPLE = 4
LOG_KIND = "ailedger/served-log/v1"


def digest(blob: bytes) -> bytes:
    return hashlib.sha256(blob).digest()


# -- training -----------------------------------------------------------------------------------------

def tensors_match(reported: bytes, rerun: bytes, tolerance: float = TRAIN_TOLERANCE) -> tuple[bool, str]:
    """Compare two adapters' safetensors files: same tensors, every value within `tolerance`."""
    try:
        a, b = load_tensors(reported), load_tensors(rerun)
    except Exception as exc:  # a blob that is not safetensors is a failed report, not a crash
        return False, f"not a safetensors file: {type(exc).__name__}"
    if a.keys() != b.keys():
        return False, f"tensor names differ ({len(a)} reported, {len(b)} re-run)"
    worst = 0.0
    for name, t in a.items():
        if t.shape != b[name].shape:
            return False, f"{name}: shape {tuple(t.shape)} vs {tuple(b[name].shape)}"
        worst = max(worst, float((t.float() - b[name].float()).abs().max()) if t.numel() else 0.0)
    return worst <= tolerance, f"max |difference| {worst:.3g} (tolerance {tolerance:g})"


# -- serving ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Served:
    prompt: list[int]
    max_tokens: int
    stop_ids: list[int]
    adapter: str | None
    tokens: list[int]


def encode_log(requests: Sequence[Served]) -> bytes:
    doc = {"kind": LOG_KIND, "requests": [asdict(r) for r in requests]}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def decode_log(blob: bytes) -> list[Served]:
    try:
        doc = json.loads(blob)
        if doc.get("kind") != LOG_KIND:
            raise ValueError(doc.get("kind"))
        return [Served([int(x) for x in r["prompt"]], int(r["max_tokens"]), [int(x) for x in r["stop_ids"]],
                       r["adapter"], [int(x) for x in r["tokens"]]) for r in doc["requests"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LedgerError(errors.MARKET_BAD_REPORT, f"not a served-request log: {exc}") from exc


def served_tokens(requests: Sequence[Served]) -> int:
    """What a per-token lease is paid for: prompt and completion tokens of every request."""
    return sum(len(r.prompt) + len(r.tokens) for r in requests)


def sample(n: int, seed: bytes, k: int = SAMPLE) -> list[int]:
    """k distinct request indices out of n, drawn from `seed` (the check's id and digest): no one picks them."""
    order = sorted(range(n), key=lambda i: hashlib.sha256(seed + i.to_bytes(8, "big")).digest())
    return sorted(order[:k])


def generate(engine: Engine, prompts: Sequence[list[int]], max_tokens: int, stop_ids: Sequence[int],
             adapter: str | None) -> list[Served]:
    gens = engine.generate([Request(p, max_tokens, adapter, stop_ids=frozenset(stop_ids)) for p in prompts])
    return [Served(list(p), max_tokens, sorted(stop_ids), adapter, list(g.tokens)) for p, g in zip(prompts, gens,
                                                                                                  strict=True)]


@torch.inference_mode()
def regenerate_matches(engine: Engine, log: Sequence[Served], seed: bytes, k: int = SAMPLE) -> tuple[bool, str]:
    """Greedy re-generation of `k` sampled requests, compared token by token with what was reported."""
    if not log:
        return False, "the log has no request"
    for i in sample(len(log), seed, k):
        r = log[i]
        (again,) = generate(engine, [r.prompt], r.max_tokens, r.stop_ids, r.adapter)
        if again.tokens != r.tokens:
            at = next((j for j, (x, y) in enumerate(zip(again.tokens, r.tokens, strict=False)) if x != y),
                      min(len(again.tokens), len(r.tokens)))
            return False, f"request {i}: token {at} differs"
    return True, f"{min(k, len(log))} of {len(log)} requests re-generated token for token"
