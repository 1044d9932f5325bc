"""Read helpers over any state, and the model reference syntax serving resolves.

A reference names exactly one adapter version:
  NAME                  the highest version of NAME that is not retired
  NAME@N                version N (N >= 1, decimal, no sign or leading zero)
  NAME@sha256:HEX       the version whose adapter hash is HEX (64 hex digits, any case)
`resolve` refuses retired versions (model_retired) unless asked not to, so a pinned retired
version fails loudly instead of silently answering with other weights.
"""

from __future__ import annotations

import re
from typing import Any

from ailedger.chain.params import Reader
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.models import state as s
from ailedger.models.state import Adapter, BaseModel

_VERSION = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)
_HASH = re.compile(r"sha256:([0-9a-fA-F]{64})", re.ASCII)


def get_base(state: Reader, name: str) -> BaseModel | None:
    return s.get_base(state, name)


def list_bases(state: Reader) -> list[BaseModel]:
    """Base models in registration order."""
    names = [(state.get(s.base_index_key(i)) or b"").decode() for i in range(s.get_count(state, s.BASE_COUNT_KEY))]
    return [b for b in (s.get_base(state, n) for n in names) if b is not None]


def model_names(state: Reader) -> list[str]:
    """Adapter names in first-publish order."""
    return [(state.get(s.adapter_index_key(i)) or b"").decode()
            for i in range(s.get_count(state, s.ADAPTER_COUNT_KEY))]


def versions(state: Reader, name: str) -> list[Adapter]:
    head = s.get_head(state, name)
    if head is None:
        return []
    return [a for a in (s.get_adapter(state, name, n) for n in range(1, head.versions + 1)) if a is not None]


def get_adapter(state: Reader, name: str, version: int | None = None) -> Adapter | None:
    """Version `version` of `name`, or (None) its highest version that is not retired."""
    if version is not None:
        return s.get_adapter(state, name, version)
    live = [a for a in versions(state, name) if not a.retired]
    return live[-1] if live else None


def resolve(state: Reader, ref: str, allow_retired: bool = False) -> Adapter:
    """The exact adapter version `ref` names (syntax in the module docstring), or a coded error."""
    name, at, pin = ref.partition("@")
    if not s.name_ok(name) or (at and not pin):
        raise LedgerError(errors.BAD_MODEL_REF, repr(ref))
    head = s.get_head(state, name)
    if head is None:
        raise LedgerError(errors.MODEL_NOT_FOUND, repr(name))
    adapter: Adapter | None
    if not at:
        adapter = get_adapter(state, name)
        if adapter is None:
            raise LedgerError(errors.MODEL_RETIRED, f"every version of {name} is retired")
        return adapter
    if _VERSION.fullmatch(pin):
        adapter = s.get_adapter(state, name, int(pin))
    elif (m := _HASH.fullmatch(pin)) is not None:
        found = s.find_adapter_hash(state, bytes.fromhex(m.group(1)))
        adapter = s.get_adapter(state, name, found[1]) if found is not None and found[0] == name else None
    else:
        raise LedgerError(errors.BAD_MODEL_REF, repr(ref))
    if adapter is None:
        raise LedgerError(errors.MODEL_VERSION_NOT_FOUND, ref)
    if adapter.retired and not allow_retired:
        raise LedgerError(errors.MODEL_RETIRED, adapter.ref)
    return adapter


def list_models(state: Reader, include_retired: bool = False) -> list[dict[str, Any]]:
    """Every adapter version's provenance JSON, by name in first-publish order then version."""
    return [a.to_json() for name in model_names(state) for a in versions(state, name)
            if include_retired or not a.retired]
