"""What a machine offers and what a job needs, and the resource class that concentration is measured in.

Why a class: capacity is only interchangeable within a kind of machine. An operator holding every H100
lease holds that market even while CPU capacity is spread thin, so the cap and the HHI are per class.
The class is the accelerator model when a job needs accelerators, else "cpu"; capacity is counted in
accelerators for an accelerator class and in CPU cores for "cpu".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ailedger.core import errors
from ailedger.core.encoding import U16, U32, Record, Text
from ailedger.core.errors import LedgerError

LABEL = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
CPU_CLASS = "cpu"


@dataclass(frozen=True)
class Resources:
    cpu_cores: int
    memory_gib: int
    accelerator: str  # a model label such as "h100"; "" for none
    accelerators: int
    region: str  # a label; "" in an order means any region

    def to_json(self) -> dict[str, Any]:
        return {"cpu_cores": self.cpu_cores, "memory_gib": self.memory_gib, "accelerator": self.accelerator or None,
                "accelerators": self.accelerators, "region": self.region or None, "class": resource_class(self),
                "units": units(self)}


RESOURCES = Record(Resources, {"cpu_cores": U32, "memory_gib": U32, "accelerator": Text(32), "accelerators": U16,
                               "region": Text(32)})


def resource_class(r: Resources) -> str:
    return r.accelerator if r.accelerators else CPU_CLASS


def units(r: Resources) -> int:
    """Capacity counted against the concentration cap: accelerators, or CPU cores for the cpu class."""
    return r.accelerators if r.accelerators else r.cpu_cores


def check(r: Resources, code: errors.ErrorCode) -> None:
    """Labels are lower-case words (they become part of state keys); a count needs a model and back."""
    if r.cpu_cores == 0 or r.memory_gib == 0:
        raise LedgerError(code, "cpu_cores and memory_gib must be at least 1")
    for name, label in (("accelerator", r.accelerator), ("region", r.region)):
        if label and not LABEL.fullmatch(label):
            raise LedgerError(code, f"{name} {label!r}: lower-case letters, digits, '.', '_' or '-', at most 32")
    if bool(r.accelerators) != bool(r.accelerator):
        raise LedgerError(code, "give an accelerator model together with a count above 0 (or neither)")
    if r.accelerator == CPU_CLASS:
        raise LedgerError(code, "'cpu' is the class of jobs without accelerators, not an accelerator model")


def covers(offer: Resources, need: Resources) -> bool:
    """The offer has at least the cores, memory and accelerators asked, of the same model, in the region asked."""
    return (offer.cpu_cores >= need.cpu_cores and offer.memory_gib >= need.memory_gib
            and offer.accelerators >= need.accelerators
            and (not need.accelerators or offer.accelerator == need.accelerator)
            and (not need.region or offer.region == need.region))
