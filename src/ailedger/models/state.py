"""Model state: base models, adapter versions, their codecs and the keys they live under.

Layout (every key under `mdl/`; names are [a-z0-9.-], so the '/' after a name never belongs to it):
  mdl/nb, mdl/bidx/<u64 i>        -> number of base models; the i-th base name (registration order)
  mdl/base/<name>                 -> BaseModel, written once by register_base
  mdl/wh/<b32 weights_hash>       -> base name (one name per set of weights)
  mdl/na, mdl/aidx/<u64 i>        -> number of adapter names; the i-th name (first-publish order)
  mdl/head/<name>                 -> Head: owner of the name and its number of versions
  mdl/ver/<name>/<u32 n>          -> Adapter version n (from 1), with its provenance
  mdl/ah/<b32 adapter_hash>       -> u32 version | name (an adapter hash is published once, ledger-wide)
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

from ailedger.chain.params import Reader
from ailedger.chain.state import Journal
from ailedger.core.address import encode_address
from ailedger.core.encoding import AMOUNT, B20, B32, U8, U16, U32, U64, Record, Text

MAX_NAME = 64
MAX_ARCHITECTURE = 64
MAX_LICENCE = 64
MAX_DATANET_NAME = 64

NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}", re.ASCII)  # never a path or an option
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class BaseModel:
    name: str
    weights_hash: bytes  # sha256 over the safetensors weights, computed off the ledger
    config_hash: bytes
    architecture: str
    params_count: int
    context_length: int
    licence: str
    registrar: bytes
    height: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "weights_hash": self.weights_hash.hex(), "config_hash": self.config_hash.hex(),
                "architecture": self.architecture, "params_count": self.params_count,
                "context_length": self.context_length, "licence": self.licence,
                "registrar": encode_address(self.registrar), "height": self.height}


BASE = Record(BaseModel, {
    "name": Text(MAX_NAME), "weights_hash": B32, "config_hash": B32, "architecture": Text(MAX_ARCHITECTURE),
    "params_count": U64, "context_length": U32, "licence": Text(MAX_LICENCE), "registrar": B20, "height": U64,
})


@dataclass
class Head:
    owner: bytes
    versions: int


HEAD = Record(Head, {"owner": B20, "versions": U32})


@dataclass
class Adapter:
    """One published version; base_hash, snapshot_root and snapshot_count are copied at publish time."""

    name: str
    version: int
    owner: bytes
    base: str
    base_hash: bytes
    adapter_hash: bytes
    datanet: str
    datanet_version: int
    snapshot_root: bytes
    snapshot_count: int
    hyperparams_hash: bytes
    card_hash: bytes
    rank: int
    price_per_1k_tokens: int
    job_id: bytes  # 32 zero bytes when the adapter was not trained through a ledger job
    height: int
    retired: int = 0  # 0 live, 1 retired
    retired_height: int = 0
    attribution_root: bytes = bytes(32)  # the attribution bundle's root (publish_attribution); zeros: none yet
    attribution_height: int = 0  # the height it was (last) published at

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        """The provenance a caller sees (`/v1/models`, `ailedger model show`)."""
        return {
            "id": self.ref, "name": self.name, "version": self.version, "owner": encode_address(self.owner),
            "base": {"name": self.base, "weights_hash": self.base_hash.hex()},
            "adapter_hash": self.adapter_hash.hex(),
            "datanet": {"name": self.datanet, "version": self.datanet_version,
                        "snapshot_root": self.snapshot_root.hex(), "records": self.snapshot_count},
            "hyperparams_hash": self.hyperparams_hash.hex(), "card_hash": self.card_hash.hex(), "rank": self.rank,
            "price_per_1k_tokens": self.price_per_1k_tokens,
            "job_id": self.job_id.hex() if any(self.job_id) else None, "published_height": self.height,
            "retired": bool(self.retired), "retired_height": self.retired_height if self.retired else None,
            "attribution_root": self.attribution_root.hex() if any(self.attribution_root) else None,
            "attribution_height": self.attribution_height if any(self.attribution_root) else None,
        }


ADAPTER = Record(Adapter, {
    "name": Text(MAX_NAME), "version": U32, "owner": B20, "base": Text(MAX_NAME), "base_hash": B32,
    "adapter_hash": B32, "datanet": Text(MAX_DATANET_NAME), "datanet_version": U32, "snapshot_root": B32,
    "snapshot_count": U64, "hyperparams_hash": B32, "card_hash": B32, "rank": U16, "price_per_1k_tokens": AMOUNT,
    "job_id": B32, "height": U64, "retired": U8, "retired_height": U64, "attribution_root": B32,
    "attribution_height": U64,
})


def name_ok(name: str) -> bool:
    """1-64 of [a-z0-9.-], not starting with '.' or '-'."""
    return NAME.fullmatch(name) is not None


# -- keys -----------------------------------------------------------------------------------------

BASE_COUNT_KEY = b"mdl/nb"
ADAPTER_COUNT_KEY = b"mdl/na"


def base_key(name: str) -> bytes:
    return b"mdl/base/" + name.encode()


def base_index_key(i: int) -> bytes:
    return b"mdl/bidx/" + _U64.pack(i)


def weights_key(weights_hash: bytes) -> bytes:
    return b"mdl/wh/" + weights_hash


def head_key(name: str) -> bytes:
    return b"mdl/head/" + name.encode()


def adapter_index_key(i: int) -> bytes:
    return b"mdl/aidx/" + _U64.pack(i)


def version_key(name: str, n: int) -> bytes:
    return b"mdl/ver/" + name.encode() + b"/" + _U32.pack(n)


def adapter_hash_key(adapter_hash: bytes) -> bytes:
    return b"mdl/ah/" + adapter_hash


# -- typed get/put --------------------------------------------------------------------------------

def get_count(state: Reader, key: bytes) -> int:
    raw = state.get(key)
    return int(_U64.unpack(raw)[0]) if raw else 0


def append_index(state: Journal, count_key: bytes, index_key: bytes, name: str) -> None:
    """Record `name` as the next entry of a listing (index_key is that entry's key)."""
    state.set(index_key, name.encode())
    state.set(count_key, _U64.pack(get_count(state, count_key) + 1))


def get_base(state: Reader, name: str) -> BaseModel | None:
    raw = state.get(base_key(name))
    return BASE.decode(raw) if raw else None


def get_head(state: Reader, name: str) -> Head | None:
    raw = state.get(head_key(name))
    return HEAD.decode(raw) if raw else None


def get_adapter(state: Reader, name: str, version: int) -> Adapter | None:
    raw = state.get(version_key(name, version)) if 0 < version < 2**32 else None
    return ADAPTER.decode(raw) if raw else None


def put_adapter(state: Journal, a: Adapter) -> None:
    state.set(version_key(a.name, a.version), ADAPTER.encode(a))


def find_adapter_hash(state: Reader, adapter_hash: bytes) -> tuple[str, int] | None:
    """The (name, version) that published `adapter_hash`, if any."""
    raw = state.get(adapter_hash_key(adapter_hash))
    if not raw:
        return None
    return raw[4:].decode(), int(_U32.unpack_from(raw, 0)[0])


def put_adapter_hash(state: Journal, adapter_hash: bytes, name: str, version: int) -> None:
    state.set(adapter_hash_key(adapter_hash), _U32.pack(version) + name.encode())
