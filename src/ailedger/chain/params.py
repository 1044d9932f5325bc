"""The typed registry of every economic and consensus parameter.

Why one registry in state: governance must be able to change any number that moves money (fees,
stakes, windows, caps) by an on-ledger vote, and an auditor must see which value was in force at
each block. Modules declare their parameters with defaults and bounds; genesis writes them into
state; rules read them from state, never from constants.

Every parameter is an unsigned 64-bit integer (basis points, micro-units, blocks and counts are all
whole numbers), so its type is checked with its bounds. After genesis a value changes only through
`ParamRegistry.set`, which only governance's execution of a passed proposal calls (a test scans the
source for any other caller), and each change is appended to the parameter's history:

  param/<name>                  -> u64 value in force
  phist/n/<name>                -> u32 number of changes since genesis
  phist/e/<name>/<u32 i>        -> the i-th change: u64 height | u64 old | u64 new | u64 proposal id

Why an indexed list and not one growing value: a change writes one new key, and the history of a
parameter that changed a thousand times is still read in pages.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ailedger.core import errors
from ailedger.core.errors import LedgerError

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_CHANGE = struct.Struct(">QQQQ")
PREFIX = b"param/"
HISTORY_COUNT_PREFIX = b"phist/n/"
HISTORY_ENTRY_PREFIX = b"phist/e/"
TYPE = "u64"  # the one type every parameter has (see the module docstring)
MAX_HISTORY_PAGE = 1_000


class Reader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


class Writer(Reader, Protocol):
    def set(self, key: bytes, value: bytes) -> None: ...


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: int
    minimum: int
    maximum: int
    unit: str
    doc: str
    at_most: str = ""  # another parameter this one must never exceed (a minimum and its maximum)

    def check(self, value: int) -> int:
        if type(value) is not int or not self.minimum <= value <= self.maximum:
            raise LedgerError(errors.BAD_PARAM, f"{self.name}={value!r} outside {self.minimum}..{self.maximum}")
        return value


@dataclass(frozen=True)
class Change:
    """One change of a parameter: at the end of block `height`, by executed proposal `proposal`."""

    height: int
    old: int
    new: int
    proposal: int

    def to_json(self) -> dict[str, int]:
        return {"height": self.height, "old": self.old, "new": self.new, "proposal": self.proposal}


def _history_count_key(name: str) -> bytes:
    return HISTORY_COUNT_PREFIX + name.encode()


def _history_entry_key(name: str, i: int) -> bytes:
    return HISTORY_ENTRY_PREFIX + name.encode() + b"/" + _U32.pack(i)


def history_count(state: Reader, name: str) -> int:
    raw = state.get(_history_count_key(name))
    return int(_U32.unpack(raw)[0]) if raw else 0


def history(state: Reader, name: str, offset: int = 0, limit: int | None = None) -> list[Change]:
    """The changes of `name` since genesis, oldest first (`offset`/`limit` page through them)."""
    n = history_count(state, name)
    stop = n if limit is None else min(n, offset + limit)
    out = []
    for i in range(max(offset, 0), stop):
        raw = state.get(_history_entry_key(name, i))
        if raw is None:
            raise LedgerError(errors.STORE_CORRUPT, f"parameter history of {name} has no entry {i}")
        out.append(Change(*_CHANGE.unpack(raw)))
    return out


class ParamRegistry:
    """All parameter specs of a runtime, by name."""

    def __init__(self) -> None:
        self.specs: dict[str, ParamSpec] = {}

    def add(self, spec: ParamSpec) -> None:
        if spec.name in self.specs:
            raise ValueError(f"parameter {spec.name} declared twice")
        spec.check(spec.default)
        self.specs[spec.name] = spec

    def spec(self, name: str) -> ParamSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise LedgerError(errors.BAD_PARAM, f"unknown parameter {name!r}") from None

    def order_violation(self, value: Callable[[str], int]) -> str | None:
        """The first pair (a parameter and the one it must not exceed) out of order under `value`, or None.

        Why beside the bounds: a minimum raised above its maximum passes every bound and still makes the
        action it governs impossible, and two proposals can each be fine alone and wrong together."""
        for name in sorted(self.specs):
            high = self.specs[name].at_most
            if high and value(name) > value(high):
                return f"{name}={value(name)} exceeds {high}={value(high)}"
        return None

    def write_genesis(self, state: Writer, overrides: dict[str, int]) -> None:
        for name in overrides:
            self.spec(name)
        for spec in self.specs.values():
            if spec.at_most and spec.at_most not in self.specs:
                raise ValueError(f"parameter {spec.name} is bounded by {spec.at_most}, which is not declared")
        values = {name: self.specs[name].check(overrides.get(name, self.specs[name].default)) for name in self.specs}
        violation = self.order_violation(values.__getitem__)
        if violation:
            raise LedgerError(errors.BAD_PARAM, violation)
        for name in sorted(values):
            state.set(PREFIX + name.encode(), _U64.pack(values[name]))

    def set(self, state: Writer, name: str, value: int, height: int, proposal: int) -> Change:
        """Put `value` in force and append the change to the history. Only governance execution calls
        this (tests/test_governance_guard.py keeps it so); bounds and type are checked here once more."""
        new = self.spec(name).check(value)
        change = Change(height, get(state, name), new, proposal)
        n = history_count(state, name)
        state.set(_history_entry_key(name, n), _CHANGE.pack(change.height, change.old, change.new, change.proposal))
        state.set(_history_count_key(name), _U32.pack(n + 1))
        state.set(PREFIX + name.encode(), _U64.pack(new))
        return change

    def all(self, state: Reader) -> dict[str, int]:
        return {name: get(state, name) for name in sorted(self.specs)}

    def doc(self, state: Reader, name: str) -> dict[str, Any]:
        """A parameter as the API and CLI show it: value in force, type, default, bounds, unit, meaning, and
        how many times governance changed it (with the last change)."""
        spec = self.specs[name]
        n = history_count(state, name)
        last = history(state, name, n - 1, 1)[0].to_json() if n else None
        return {"value": get(state, name), "type": TYPE, "default": spec.default, "minimum": spec.minimum,
                "maximum": spec.maximum, "at_most": spec.at_most or None, "unit": spec.unit, "doc": spec.doc,
                "changes": n, "last_change": last}

    def history_doc(self, state: Reader, name: str, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """One parameter (as `doc`) with its changes since genesis, oldest first, a page of them."""
        if name not in self.specs:
            raise LedgerError(errors.BAD_PARAM, f"unknown parameter {name!r}")
        if offset < 0 or not 1 <= limit <= MAX_HISTORY_PAGE:
            raise LedgerError(errors.BAD_REQUEST, f"offset must be >= 0 and limit within 1..{MAX_HISTORY_PAGE}")
        changes = history(state, name, offset, limit)
        doc = self.doc(state, name)
        return {"name": name, **doc, "history": [c.to_json() for c in changes], "offset": offset,
                "more": offset + len(changes) < doc["changes"]}


def get(state: Reader, name: str) -> int:
    """The value in force; a missing parameter is a genesis bug, so it raises loudly."""
    raw = state.get(PREFIX + name.encode())
    if raw is None:
        raise LedgerError(errors.BAD_PARAM, f"parameter {name!r} is not set in state")
    return int(_U64.unpack(raw)[0])
