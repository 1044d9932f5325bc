"""The typed registry of every economic and consensus parameter.

Why one registry in state: governance must be able to change any number that moves money (fees,
stakes, windows, caps) by an on-ledger vote, and an auditor must see which value was in force at
each block. Modules declare their parameters with defaults and bounds; genesis writes them into
state; rules read them from state, never from constants.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from ailedger.core import errors
from ailedger.core.errors import LedgerError

_U64 = struct.Struct(">Q")
PREFIX = b"param/"


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

    def check(self, value: int) -> int:
        if type(value) is not int or not self.minimum <= value <= self.maximum:
            raise LedgerError(errors.BAD_PARAM, f"{self.name}={value!r} outside {self.minimum}..{self.maximum}")
        return value


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

    def write_genesis(self, state: Writer, overrides: dict[str, int]) -> None:
        for name in overrides:
            self.spec(name)
        for name in sorted(self.specs):
            spec = self.specs[name]
            value = spec.check(overrides.get(name, spec.default))
            state.set(PREFIX + name.encode(), _U64.pack(value))

    def set(self, state: Writer, name: str, value: int) -> None:
        state.set(PREFIX + name.encode(), _U64.pack(self.spec(name).check(value)))

    def all(self, state: Reader) -> dict[str, int]:
        return {name: get(state, name) for name in sorted(self.specs)}


def get(state: Reader, name: str) -> int:
    """The value in force; a missing parameter is a genesis bug, so it raises loudly."""
    raw = state.get(PREFIX + name.encode())
    if raw is None:
        raise LedgerError(errors.BAD_PARAM, f"parameter {name!r} is not set in state")
    return int(_U64.unpack(raw)[0])
