"""What an HTTP `model` string names: the base model, or one exact adapter version and its files.

The catalog is the serving side's copy of the ledger's model registry, limited to what this server
can answer with: published versions (with their provenance JSON, as `models.views.list_models`
writes it) joined to adapter directories on this machine by adapter hash. References follow the
registry's syntax (docs/models.md): `NAME` (highest version not retired), `NAME@N`,
`NAME@sha256:HEX`. A version the ledger knows but whose files are not here, or which was trained
for another base, resolves to a clear "not served here" error rather than to other weights: the
caller must always get exactly the weights it named, or nothing.

The engine's adapter cache knows each adapter by its hash, so two names can never collide and a
re-published name can never be served from a stale directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory.adapters import AdapterInfo, inspect_adapter
from ailedger.serving.adapters import AdapterCache

_VERSION = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)
_HASH = re.compile(r"sha256:([0-9a-fA-F]{64})", re.ASCII)


@dataclass(frozen=True)
class ServedBase:
    name: str
    weights_hash: str


@dataclass(frozen=True)
class ServedAdapter:
    """One adapter version; `path` is None when the ledger knows it but this server cannot serve it."""

    name: str
    version: int
    adapter_hash: str
    path: Path | None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    retired: bool = False
    why_not: str = ""
    rank: int = 0  # its LoRA rank and layers, when served (the engine's slots are sized to fit every one)
    targets: tuple[str, ...] = ()  # with path None: why this server does not serve it

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Resolved:
    """The exact weights a request runs on: the base, and the adapter (None: the base alone)."""

    model: str  # the exact reference answered: the base's name or NAME@N
    base: ServedBase
    adapter: ServedAdapter | None

    @property
    def adapter_id(self) -> str | None:
        """The id the engine's adapter cache knows this adapter by (its hash)."""
        return None if self.adapter is None else self.adapter.adapter_hash


class Catalog:
    """Model references -> exact weights, for one base model."""

    def __init__(self, base: ServedBase, adapters: Iterable[ServedAdapter] = ()) -> None:
        self.base = base
        self._versions: dict[str, dict[int, ServedAdapter]] = {}
        for a in adapters:
            if a.version in self._versions.get(a.name, {}):
                raise ValueError(f"{a.ref} is listed twice")
            self._versions.setdefault(a.name, {})[a.version] = a

    # -- constructors --------------------------------------------------------------------------------------
    @classmethod
    def from_directory(cls, base: ServedBase, adapters_dir: Path | str | None) -> Catalog:
        """Each subdirectory is an adapter named by its directory name, as version 1 (no ledger needed).

        Its hash is checked against its card here, and adapters whose card names another base are
        listed as not served.
        """
        found = []
        for d in _subdirs(adapters_dir):
            info = inspect_adapter(d)
            card = info.card
            provenance: dict[str, Any] = {k: card[k] for k in ("datanet", "hyperparams", "synthetic") if k in card}
            ok = info.base_weights_hash == base.weights_hash
            found.append(ServedAdapter(d.name, 1, info.adapter_hash, d if ok else None, provenance,
                                       why_not="" if ok else f"trained for base {info.base_weights_hash}",
                                       rank=info.rank, targets=info.target_modules))
        return cls(base, found)

    @classmethod
    def from_ledger(cls, base: ServedBase, models_json: Mapping[str, Any], adapters_dir: Path | str | None) -> Catalog:
        """Published versions (a node's `ledger_models()` answer) joined to local adapter directories by hash.

        A local directory counts for a version when its checked tensors hash to the version's adapter
        hash (its name does not matter; naming it by the hash is the convention).
        """
        local: dict[str, AdapterInfo] = {}
        for d in _subdirs(adapters_dir):
            try:
                info = inspect_adapter(d)
                local.setdefault(info.adapter_hash, info)
            except LedgerError:
                continue  # a damaged or foreign directory serves nothing; its version reports "not here"
        out = []
        for m in models_json.get("models", []):
            digest, base_hash = str(m["adapter_hash"]), str(m["base"]["weights_hash"])
            known = local.get(digest)
            path, why = (known.path if known else None), ""
            if base_hash != base.weights_hash:
                path, why = None, f"published for base {m['base'].get('name')} ({base_hash}), not {base.name}"
            elif path is None:
                why = "its adapter files are not on this server"
            out.append(ServedAdapter(str(m["name"]), int(m["version"]), digest, path, dict(m),
                                     bool(m.get("retired", False)), why, known.rank if known else 0,
                                     known.target_modules if known else ()))
        return cls(base, out)

    # -- reads ---------------------------------------------------------------------------------------------
    def served(self) -> list[ServedAdapter]:
        """Every adapter version this server can answer with, by name then version."""
        return [a for name in sorted(self._versions) for _, a in sorted(self._versions[name].items())
                if a.path is not None and not a.retired]

    def resolve(self, ref: str) -> Resolved:
        """The exact weights `ref` names, or a coded error (404 unknown or not served, 410 retired, 400 malformed)."""
        if ref == self.base.name:
            return Resolved(self.base.name, self.base, None)
        name, at, pin = ref.partition("@")
        if not name or (at and not pin):
            raise LedgerError(errors.BAD_MODEL_REF, repr(ref))
        versions = self._versions.get(name)
        if not versions:
            raise LedgerError(errors.MODEL_NOT_FOUND, f"{name!r} is neither the base ({self.base.name}) nor an "
                                                      "adapter served here")
        adapter: ServedAdapter | None
        if not at:
            live = [a for _, a in sorted(versions.items()) if not a.retired]
            if not live:
                raise LedgerError(errors.MODEL_RETIRED, f"every version of {name} is retired")
            adapter = live[-1]
        elif _VERSION.fullmatch(pin):
            adapter = versions.get(int(pin))
        elif (m := _HASH.fullmatch(pin)) is not None:
            adapter = next((a for a in versions.values() if a.adapter_hash == m.group(1).lower()), None)
        else:
            raise LedgerError(errors.BAD_MODEL_REF, repr(ref))
        if adapter is None:
            raise LedgerError(errors.MODEL_VERSION_NOT_FOUND, ref)
        if adapter.retired:
            raise LedgerError(errors.MODEL_RETIRED, adapter.ref)
        if adapter.path is None:
            raise LedgerError(errors.MODEL_VERSION_NOT_FOUND, f"{adapter.ref} is not served here: {adapter.why_not}")
        return Resolved(adapter.ref, self.base, adapter)

    def register(self, cache: AdapterCache) -> None:
        """Register every served adapter with the engine's cache, under its hash."""
        for a in self.served():
            assert a.path is not None
            cache.register(a.adapter_hash, a.path)


def _subdirs(root: Path | str | None) -> list[Path]:
    if root is None:
        return []
    path = Path(root)
    if not path.is_dir():
        raise LedgerError(errors.FILE_UNREADABLE, f"{path} is not a directory")
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
