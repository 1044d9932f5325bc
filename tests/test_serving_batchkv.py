"""The running batch's KV cache against a plain per-row record, through random joins, leaves and steps."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import DynamicCache

from ailedger.serving import batchkv
from ailedger.serving.batchkv import BatchKV

LAYERS, HEADS, DIM = 2, 2, 3


def _part(rng: random.Random, gen: torch.Generator, rows: list[list[torch.Tensor]]) -> BatchKV:
    """A prefill's cache for 1-3 new rows: real positions random, padded positions NaN (as garbage)."""
    lengths = [rng.randint(1, 24) for _ in range(rng.randint(1, 3))]
    m = max(lengths) + rng.randint(0, 2)
    data = []
    for _ in range(LAYERS):
        k = torch.full((len(lengths), HEADS, m, DIM), float("nan"))
        v = torch.full_like(k, float("nan"))
        for i, n in enumerate(lengths):
            k[i, :, m - n:] = torch.randn(HEADS, n, DIM, generator=gen)
            v[i, :, m - n:] = torch.randn(HEADS, n, DIM, generator=gen)
        data.append((k, v))
    for i, n in enumerate(lengths):
        rows.append([torch.cat([data[layer][t][i, :, m - n:] for t in (0, 1)]) for layer in range(LAYERS)])
    return BatchKV(DynamicCache(ddp_cache_data=data), [m - n for n in lengths])


def _check(kv: BatchKV, rows: list[list[torch.Tensor]]) -> None:
    assert kv.rows == len(rows)
    if not rows:
        assert kv.cache is None
        return
    for layer, (k, v) in enumerate(batchkv.layers(kv.cache)):
        assert k.shape == (len(rows), HEADS, kv.length, DIM)
        for i, want in enumerate(rows):
            p = kv.pad[i]
            assert torch.equal(torch.cat([k[i, :, p:], v[i, :, p:]]), want[layer])
            assert not k[i, :, :p].any() and not v[i, :, :p].any()  # padding is zeros, never NaN


@pytest.mark.parametrize("seed", range(6))
def test_joins_leaves_and_steps_keep_every_row(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.setattr(batchkv, "MIN_ROOM", 2)  # little spare room: reallocations happen often
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    kv = BatchKV(rows_capacity=2)
    rows: list[list[torch.Tensor]] = []  # per row, per layer: its real keys then values (2 * HEADS, n, DIM)
    for _ in range(120):
        move = rng.random()
        if move < 0.3 or not rows:
            kv.merge(_part(rng, gen, rows))
        elif move < 0.6:
            alive = [i for i in range(len(rows)) if rng.random() < 0.7]
            style = rng.choice(["ascending", "tail", "shuffled"])
            if style == "tail":  # the engine's order: rows from the end fill the holes
                n = len(alive)
                tail = iter(i for i in alive if i >= n)
                keep = [i if i in alive else next(tail) for i in range(n)]
            else:
                keep = alive if style == "ascending" else rng.sample(alive, len(alive))
            kv.select(keep)
            rows = [rows[i] for i in keep]
        else:  # a decode step: every layer gets one new position per row
            assert kv.cache is not None
            for layer, slab in enumerate(batchkv.slabs(kv.cache)):
                k = torch.randn(len(rows), HEADS, 1, DIM, generator=gen)
                v = torch.randn(len(rows), HEADS, 1, DIM, generator=gen)
                slab.update(k, v)
                for i in range(len(rows)):
                    rows[i][layer] = torch.cat([rows[i][layer], torch.cat([k[i], v[i]])], dim=1)
        _check(kv, rows)
