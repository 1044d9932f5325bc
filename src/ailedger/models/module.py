"""The models ledger module (number 3): registered base models and published LoRA adapters.

A base model is registered by the sha256 of its weights (one name per set of weights). An adapter
is published under a global name: the first publisher owns the name, each later publish by the
owner is version n+1. A version records its provenance at publish time (the base's weights hash,
the Datanet version's snapshot root and record count, the hyper-parameter and model-card blob
hashes, the adapter hash), so a caller can tell exactly which weights answered and what data they
learnt from. The owner may reprice or retire a version; serving refuses retired versions.

Transactions: 0x0301 register_base, 0x0302 publish_adapter, 0x0303 set_price, 0x0304 retire,
0x0305 publish_attribution (the root of a version's attribution bundle, owner only).
Docs: docs/models.md.
"""

from __future__ import annotations

from ailedger.chain.module import Module, TxType
from ailedger.chain.params import ParamSpec
from ailedger.core.encoding import MAX_AMOUNT
from ailedger.models import payloads as p
from ailedger.models import txs

NUMBER = 3

PARAMS = [
    ParamSpec("models_max_rank", 256, 1, 65_535, "rank", "Highest LoRA rank an adapter may be published with."),
    ParamSpec("models_min_price_per_1k_tokens", 0, 0, MAX_AMOUNT, "micro-units",
              "Lowest price per 1,000 tokens an adapter version may ask.", at_most="models_max_price_per_1k_tokens"),
    ParamSpec("models_max_price_per_1k_tokens", 1_000_000_000, 0, MAX_AMOUNT, "micro-units",
              "Highest price per 1,000 tokens an adapter version may ask."),
]


class ModelsModule(Module):
    def __init__(self) -> None:
        super().__init__(
            name="models",
            number=NUMBER,
            tx_types=[
                TxType(p.REGISTER_BASE, "register_base", p.REGISTER_BASE_CODEC, txs.apply_register_base,
                       "Register a base model by the hash of its weights (names and weights are unique)."),
                TxType(p.PUBLISH_ADAPTER, "publish_adapter", p.PUBLISH_ADAPTER_CODEC, txs.apply_publish_adapter,
                       "Publish the next version of an adapter with its provenance; the sender owns the name."),
                TxType(p.SET_PRICE, "set_price", p.SET_PRICE_CODEC, txs.apply_set_price,
                       "Change a live version's price per 1,000 tokens (owner only)."),
                TxType(p.RETIRE, "retire", p.RETIRE_CODEC, txs.apply_retire,
                       "Retire a version so that serving refuses it (owner only)."),
                TxType(p.PUBLISH_ATTRIBUTION, "publish_attribution", p.PUBLISH_ATTRIBUTION_CODEC,
                       txs.apply_publish_attribution,
                       "Publish (or replace) the root of a live version's attribution bundle (owner only)."),
            ],
            params=list(PARAMS),
        )
