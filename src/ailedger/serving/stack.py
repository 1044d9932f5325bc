"""One served base model, put together: LoRA slots sized for the catalog, the adapter cache, the engine.

Why one function: `ailedger serve` and the tests must build the same thing, in the same order (the
slots are injected into the model before any adapter is registered, and every adapter in the
catalog is registered under its hash), or the API would answer with weights the catalog never named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ailedger.factory.basemodel import BaseModel
from ailedger.serving.adapters import AdapterCache
from ailedger.serving.attribution_worker import AttributionWorker
from ailedger.serving.billing import LedgerBilling
from ailedger.serving.catalog import Catalog, ServedBase
from ailedger.serving.engine import Engine
from ailedger.serving.lora import ATTENTION, inject
from ailedger.serving.openai_api import Meter, create_serving_app, decoder

DEFAULT_CACHE_BYTES = 1 << 30


def served_base(base: BaseModel) -> ServedBase:
    return ServedBase(base.info.name, base.info.weights_hash)


@dataclass
class Stack:
    base: BaseModel
    catalog: Catalog
    cache: AdapterCache
    engine: Engine
    meter: Meter = field(default_factory=Meter)  # usage of every request its apps answered
    billing: LedgerBilling | None = None  # keys, balances and receipts on a ledger; None: an open server
    attribution: AttributionWorker | None = None  # attributes the answers of adapters with a bundle

    def app(self, **options: Any) -> Any:
        """The OpenAI-compatible FastAPI app over this stack (options go to `create_serving_app`)."""
        return create_serving_app(self.engine, self.catalog, self.base.tokenizer, meter=self.meter,
                                  billing=self.billing, attribution=self.attribution, **options)

    def start(self) -> None:
        self.engine.start()
        if self.attribution is not None:
            self.attribution.start()
        if self.billing is not None:
            self.billing.start()

    def close(self) -> None:
        """Stop the engine (ending its requests, which queues their receipts and attributions), attribute
        what is queued, then send the receipts."""
        try:
            self.engine.stop()
            if self.attribution is not None:
                self.attribution.close()
            if self.billing is not None:
                self.billing.close()
        finally:
            if self.attribution is not None:
                self.attribution.store.close()
            self.cache.close()


def build_stack(base: BaseModel, catalog: Catalog, max_batch: int = 16, cache_bytes: int = DEFAULT_CACHE_BYTES,
                max_slots: int | None = None, billing: LedgerBilling | None = None,
                attribution: AttributionWorker | None = None) -> Stack:
    """Inject LoRA slots into `base.model` (in place) and wire the cache and engine for `catalog`.

    Slots default to one per batch row plus the base slot (more cannot be used in one step), the
    rank and layers to the largest and the union of what the served adapters need.
    """
    served = catalog.served()
    targets = sorted({t for a in served for t in a.targets} or set(ATTENTION))
    max_rank = max([a.rank for a in served] + [1])
    slots = inject(base.model, targets, max_slots=max_slots or max(2, min(len(served), max_batch) + 1),
                   max_rank=max_rank)
    cache = AdapterCache(slots, cache_bytes, base.info)
    catalog.register(cache)
    engine = Engine(base.model, slots, cache, decode=decoder(base.tokenizer), max_batch=max_batch,
                    context_length=base.info.context_length or None)
    return Stack(base, catalog, cache, engine, billing=billing, attribution=attribution)
