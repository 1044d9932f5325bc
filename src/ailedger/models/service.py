"""Model registry reads as JSON, for the HTTP API and the embedded CLI alike.

Why here and not in the node: the chain layer knows nothing of models, so the node offers its
state, its lock and its head height, and these functions turn them into the documents a client
reads (`/v1/ledger/models…`, `ailedger model show|list`). `ModelReads` wraps a `Node` so the API
routes and the CLI's embedded backend answer the same calls with the same bytes. The path
`/v1/models` stays free for the OpenAI-compatible serving API; these are the ledger's records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ailedger.chain.node import Node
from ailedger.chain.params import Reader
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.models import views

T = TypeVar("T")


def models_json(state: Reader, height: int, include_retired: bool = True) -> dict[str, Any]:
    """Every published adapter version with its provenance (first-publish order, then version)."""
    return {"height": height, "models": views.list_models(state, include_retired)}


def model_json(state: Reader, height: int, ref: str) -> dict[str, Any]:
    """The version `ref` names (retired versions shown too), with the name's other versions.

    A bare NAME whose versions are all retired shows its highest version, marked retired.
    """
    try:
        adapter = views.resolve(state, ref, allow_retired=True)
    except LedgerError as exc:
        every = views.versions(state, ref) if exc.code is errors.MODEL_RETIRED and "@" not in ref else []
        if not every:
            raise
        adapter = every[-1]
    others = [{"version": a.version, "id": a.ref, "adapter_hash": a.adapter_hash.hex(),
               "price_per_1k_tokens": a.price_per_1k_tokens, "retired": bool(a.retired),
               "published_height": a.height} for a in views.versions(state, adapter.name)]
    return {**adapter.to_json(), "versions": others, "height": height}


def bases_json(state: Reader, height: int) -> dict[str, Any]:
    """Every registered base model, in registration order."""
    return {"height": height, "bases": [b.to_json() for b in views.list_bases(state)]}


def base_json(state: Reader, height: int, name: str) -> dict[str, Any]:
    base = views.get_base(state, name)
    if base is None:
        raise LedgerError(errors.BASE_MODEL_NOT_FOUND, repr(name))
    used = sorted({a["name"] for a in views.list_models(state, include_retired=True) if a["base"]["name"] == name})
    return {**base.to_json(), "models": used, "height": height}


class ModelReads:
    """The reads above over a node's committed state, under its lock (the producer may be sealing a block)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with self.node.lock:
            return fn(self.node.state, self.node.store.height(), *args)

    def models(self, include_retired: bool = True) -> dict[str, Any]:
        return self._read(models_json, include_retired)

    def model(self, ref: str) -> dict[str, Any]:
        return self._read(model_json, ref)

    def bases(self) -> dict[str, Any]:
        return self._read(bases_json)

    def base(self, name: str) -> dict[str, Any]:
        return self._read(base_json, name)
