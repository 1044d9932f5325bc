"""How a domain plugs into the ledger: its transaction types, parameters, genesis and block hooks.

Why a registry: datanets, models, the market and agents each add their own transactions and state
without touching the state machine. A module owns a key prefix in state and a range of type ids
(module number << 8 | action), declares its parameters, and may run deterministic work at the end
of each block (releasing unbonded stake, closing auctions...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ailedger.chain.params import ParamRegistry, ParamSpec
from ailedger.core.encoding import Codec

if TYPE_CHECKING:
    from ailedger.chain.genesis import Genesis
    from ailedger.chain.state import Journal
    from ailedger.chain.tx import Tx


@dataclass(frozen=True)
class BlockContext:
    """What a transaction may know about its block: never the wall clock, only these fields."""

    chain_id: str
    height: int
    timestamp_ms: int
    proposer: bytes
    seed: bytes


Handler = Callable[["Journal", BlockContext, "Tx", Any], None]


@dataclass(frozen=True)
class TxType:
    id: int
    name: str
    codec: Codec[Any]
    handler: Handler
    doc: str = ""


@dataclass
class Module:
    """Base for a ledger module; override the hooks you need."""

    name: str
    number: int
    tx_types: list[TxType] = field(default_factory=list)
    params: list[ParamSpec] = field(default_factory=list)

    def bind(self, registry: ParamRegistry) -> None:
        """Receive the runtime's whole parameter registry (every module's specs) once it is assembled;
        only governance needs it, to check proposed changes against the bounds of any module."""

    def init_genesis(self, state: Journal, genesis: Genesis) -> None:
        """Write this module's initial state from the genesis document."""

    def end_block(self, state: Journal, ctx: BlockContext) -> None:
        """Deterministic work after the block's transactions."""
