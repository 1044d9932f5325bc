"""The wire format of the model transactions: type ids, payload records and their canonical codecs."""

from __future__ import annotations

from dataclasses import dataclass

from ailedger.core.encoding import AMOUNT, B32, U16, U32, U64, Record, Text
from ailedger.models.state import MAX_ARCHITECTURE, MAX_DATANET_NAME, MAX_LICENCE, MAX_NAME

REGISTER_BASE, PUBLISH_ADAPTER, SET_PRICE, RETIRE, PUBLISH_ATTRIBUTION = range(0x0301, 0x0306)


@dataclass(frozen=True)
class RegisterBase:
    name: str
    weights_hash: bytes
    config_hash: bytes
    architecture: str
    params_count: int
    context_length: int
    licence: str


@dataclass(frozen=True)
class PublishAdapter:
    name: str
    base: str
    adapter_hash: bytes
    datanet: str
    datanet_version: int
    hyperparams_hash: bytes
    card_hash: bytes
    rank: int
    price_per_1k_tokens: int
    job_id: bytes = bytes(32)


@dataclass(frozen=True)
class SetPrice:
    name: str
    version: int
    price_per_1k_tokens: int


@dataclass(frozen=True)
class Retire:
    name: str
    version: int


@dataclass(frozen=True)
class PublishAttribution:
    """The root of an adapter version's attribution bundle (`ailedger attribution index`), so that anyone
    recomputing an answer's attribution can tell the bundle they rebuilt is the one that paid."""

    name: str
    version: int
    root: bytes


NAME = Text(MAX_NAME)
REGISTER_BASE_CODEC = Record(RegisterBase, {
    "name": NAME, "weights_hash": B32, "config_hash": B32, "architecture": Text(MAX_ARCHITECTURE),
    "params_count": U64, "context_length": U32, "licence": Text(MAX_LICENCE),
})
PUBLISH_ADAPTER_CODEC = Record(PublishAdapter, {
    "name": NAME, "base": NAME, "adapter_hash": B32, "datanet": Text(MAX_DATANET_NAME), "datanet_version": U32,
    "hyperparams_hash": B32, "card_hash": B32, "rank": U16, "price_per_1k_tokens": AMOUNT, "job_id": B32,
})
SET_PRICE_CODEC = Record(SetPrice, {"name": NAME, "version": U32, "price_per_1k_tokens": AMOUNT})
RETIRE_CODEC = Record(Retire, {"name": NAME, "version": U32})
PUBLISH_ATTRIBUTION_CODEC = Record(PublishAttribution, {"name": NAME, "version": U32, "root": B32})
