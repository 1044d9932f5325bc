"""The off-topic embedder: distilled offline from the shipped MiniLM, cached, and it separates topics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ailedger.datanet.embedding import STATIC_NAME, default_cache_dir, minilm_path, static_embedder


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The user's cache, so the one-time distillation is shared with the CLI and the benchmark."""
    return default_cache_dir()


def test_minilm_ships_in_a_package() -> None:
    assert (minilm_path() / "model.safetensors").stat().st_size > 10_000_000


def test_static_embedder_separates_topics(cache_dir: Path) -> None:
    embed = static_embedder(cache_dir)
    assert (cache_dir / STATIC_NAME / "model.safetensors").exists()
    cooking = ["Knead the dough for ten minutes, then let it rise until doubled.",
               "Season the cast iron pan with a thin layer of oil before baking bread.",
               "Simmer the tomato sauce slowly and add fresh basil at the end.",
               "Roast the vegetables at high heat so they caramelise.",
               "Rest the steak for five minutes after grilling so the juices settle.",
               "Whisk the eggs with a pinch of salt before pouring them into the pan.",
               "Use cold butter when making pie crust for a flaky texture."]
    off = ["The kernel scheduler preempts threads when a higher-priority task wakes up.",
           "Configure the TCP keepalive interval on the load balancer.",
           "The central bank raised interest rates by a quarter point.",
           "The striker scored twice in the second half of the match."]
    vecs = embed(cooking + off)
    assert vecs.shape == (11, 256) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    centroid = vecs[:4].mean(axis=0)
    sims = vecs @ (centroid / np.linalg.norm(centroid))
    assert min(sims[4:7]) > max(sims[7:]) + 0.1  # held-out cooking beats every off-topic sentence
    again = static_embedder(cache_dir)  # loads the cached copy, same function
    assert np.allclose(again(cooking), vecs[:7], atol=1e-6)
