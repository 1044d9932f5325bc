"""The reputation module: Beta scores per (role, account) in ledger state.

State:
  rep/<u8 role><20-byte address>  -> u64 alpha | u64 beta | u64 last_height   (fixed point, 1e6 = 1.0)

No key means the prior Beta(1, 1). Decay is lazy: reading (`score_bps`, `get`) decays to the asked
height without writing; `record_outcome` decays, adds the evidence and writes the result with the
new height. The module has no transactions of its own: the modules that judge outcomes (datanets
now, the market and agents later) call `record_outcome` inside their own rules, and it brings the
`reputation_half_life_blocks` parameter.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any

from ailedger.chain import params
from ailedger.chain.module import Module
from ailedger.chain.params import ParamSpec, Reader
from ailedger.chain.state import Journal
from ailedger.core import errors
from ailedger.core.address import encode_address
from ailedger.core.errors import LedgerError
from ailedger.reputation.beta import SCALE, Beta, add_evidence, decayed

PREFIX = b"rep/"
_VALUE = struct.Struct(">QQQ")
NUMBER = 15  # no transactions; the number reserves type ids 0x0F01.. should it ever need some


class Role(IntEnum):
    CONTRIBUTOR = 1
    VALIDATOR = 2
    MODEL_BUILDER = 3
    COMPUTE_PROVIDER = 4
    AGENT = 5


PARAMS = [
    ParamSpec("reputation_half_life_blocks", 100_000, 1, 10**12, "blocks",
              "Blocks after which the evidence above the prior counts half as much (reputation decay)."),
]


def key(address: bytes, role: int) -> bytes:
    return PREFIX + bytes([Role(role)]) + address


def _stored(state: Reader, address: bytes, role: int) -> Beta:
    raw = state.get(key(address, role))
    return Beta(*_VALUE.unpack(raw)) if raw else Beta()


def get(state: Reader, address: bytes, role: int, height: int) -> Beta:
    """The account's Beta in `role`, decayed to `height` (nothing is written)."""
    return decayed(_stored(state, address, role), height, params.get(state, "reputation_half_life_blocks"))


def score_bps(state: Reader, address: bytes, role: int, height: int) -> int:
    """alpha / (alpha + beta) in basis points at `height`; 5,000 for an account without evidence."""
    return get(state, address, role, height).score_bps()


def record_outcome(state: Journal, address: bytes, role: int, good: bool, height: int, weight: int = SCALE) -> Beta:
    """Decay to `height`, add one outcome of `weight` (fixed point, 1e6 = one event), store and return it."""
    if type(weight) is not int or weight < 0:
        raise LedgerError(errors.INT_RANGE, f"reputation weight {weight!r}")
    b = add_evidence(get(state, address, role, height), good, weight)
    state.set(key(address, role), _VALUE.pack(b.alpha, b.beta, b.height))
    return b


def to_json(state: Reader, address: bytes, height: int) -> dict[str, Any]:
    """Every role's alpha, beta and score for `address` at `height` (what `reputation show` prints)."""
    roles = {}
    for role in Role:
        b = get(state, address, role, height)
        roles[role.name.lower()] = {"alpha": b.alpha, "beta": b.beta, "score_bps": b.score_bps(),
                                    "last_height": _stored(state, address, role).height}
    return {"address": encode_address(address), "height": height, "scale": SCALE, "roles": roles}


class ReputationModule(Module):
    def __init__(self) -> None:
        super().__init__(name="reputation", number=NUMBER, params=list(PARAMS))
