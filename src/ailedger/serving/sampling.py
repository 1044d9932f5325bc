"""Choosing the next token: greedy, or temperature and nucleus (top-p) sampling from a request's own generator.

Each request draws from its own `torch.Generator`, seeded from the request, so the same seed gives
the same tokens whatever else shares the batch (the draws of one request never depend on another's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None

    def generator(self) -> torch.Generator | None:
        if self.temperature <= 0:
            return None
        g = torch.Generator()
        if self.seed is None:
            g.seed()
        else:
            g.manual_seed(self.seed)
        return g


def choose(logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator | None]) -> list[int]:
    """One token per row of `logits` (rows, vocab): argmax for greedy rows, a seeded draw for the others."""
    greedy = logits.argmax(dim=-1).tolist()
    out = []
    for i, (p, g) in enumerate(zip(params, generators, strict=True)):
        out.append(int(greedy[i]) if g is None else sample_row(logits[i], p, g))
    return out


def sample_row(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> int:
    probs = torch.softmax(logits.float().cpu() / params.temperature, dim=-1)  # draws on the CPU generator
    if params.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        before = sorted_probs.cumsum(-1) - sorted_probs  # mass strictly above each token
        sorted_probs = torch.where(before < params.top_p, sorted_probs, 0.0)
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator).item())
