"""The base model as a Ray worker loads it: the caller's weights under the caller's identity, checked.

A worker must compute with the very weights the caller registered (an index header or an adapter
card names them by `weights_hash`), so it loads the base from the caller's directory and, on a
machine of its own, hashes the tensors again (`load_base`, a few seconds for SmolLM2). When the
files are the caller's own files (a local head, or a shared filesystem: same paths, sizes and
modification times as the caller saw when it loaded them) they were hashed already, and the worker
skips the second hash. Either way the worker's model carries the caller's `BaseModelInfo`, name
included, since an adapter card records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ailedger.cluster import per_worker
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory.basemodel import BaseModel, BaseModelInfo, load_base

Fingerprint = tuple[tuple[str, int, int], ...]  # (file name, size, mtime in ns) of the weights and config


def fingerprint(directory: str | Path) -> Fingerprint:
    d = Path(directory)
    files = sorted([*d.glob("*.safetensors"), d / "config.json"])
    return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file())


@dataclass(frozen=True)
class BaseRef:
    """What a worker needs to load the caller's base: its identity, dtype and the files' fingerprint."""

    info: BaseModelInfo
    dtype: torch.dtype
    files: Fingerprint

    @classmethod
    def of(cls, base: BaseModel) -> BaseRef:
        return cls(base.info, base.model.dtype, fingerprint(base.info.path))

    def load(self) -> BaseModel:
        """The base in this process, known as the caller knows it; refused if its weights are not the caller's."""
        path = self.info.path
        if fingerprint(path) == self.files:  # the caller's own files, hashed when the caller loaded them
            model = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype)
            model.eval()  # type: ignore[no-untyped-call]  # PreTrainedModel.eval is untyped in transformers
            return BaseModel(self.info, model, AutoTokenizer.from_pretrained(path))
        loaded = load_base(path, dtype=self.dtype)
        if loaded.info.weights_hash != self.info.weights_hash:
            raise LedgerError(errors.BASE_MODEL_UNAVAILABLE, f"{path} holds weights {loaded.info.weights_hash} "
                                                             f"here, the caller's base is {self.info.weights_hash}")
        return BaseModel(self.info, loaded.model, loaded.tokenizer)

    def resident(self) -> BaseModel:
        """The base as this worker process keeps it: loaded by the first task that needs it, shared by the rest.

        One key for every engine (training, index builds, LDS retrainings), so a long-lived cluster
        loads a base once, not once per job; no engine changes the base's weights (each trains or
        differentiates its own copy).
        """
        return per_worker(("base", self), self.load)
