"""The simulation's chain: real signed transactions sealed into real blocks by `Runtime.build_block`.

Why in memory and not the SQLite store: the economy is about who ends up with what, and a store
write per block adds nothing to that while costing a third of a 1,000-block run; the state, the
state machine, the block headers and their roots are exactly the node's. Every transaction is
signed by its actor's key and passes the same admission checks a node's mempool applies.

The sealed blocks are kept, so a verifier can replay the run from genesis through
`Runtime.validate_block` and get every state root again (tests/test_sim_economy.py does).

Nonces are tracked here, so an actor may send several transactions in one block; a transaction
refused at admission (which no actor should send) is kept in `refused`, and its sender's nonce is
read back from the state so that the next block goes on cleanly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ailedger.chain.accounts import get_account
from ailedger.chain.block import Block, BlockHeader
from ailedger.chain.genesis import Genesis
from ailedger.chain.runtime import Built, Runtime
from ailedger.chain.tx import Tx, decode_tx, sign_tx
from ailedger.core.errors import by_number
from ailedger.core.keys import KeyPair

BLOCK_MS = 1_000


@dataclass
class Outcome:
    """What one block did to the transactions of the simulation."""

    height: int
    codes: dict[bytes, int] = field(default_factory=dict)  # tx id -> receipt code (0 = applied)


class SimLedger:
    """A genesis state and the blocks built on it by the proposer's key."""

    def __init__(self, runtime: Runtime, genesis: Genesis, proposer: KeyPair) -> None:
        self.runtime, self.genesis, self.proposer = runtime, genesis, proposer
        block0, self.state = runtime.genesis_block(genesis)
        self.parent: BlockHeader = block0.header
        self.blocks: list[Block] = []  # every sealed block, so anyone can replay the run
        self.nonces: dict[bytes, int] = {}
        self.fees: Counter[bytes] = Counter()  # fees each address paid
        self.failed: Counter[str] = Counter()  # execution failures by error name
        self.refused: list[str] = []  # admission failures (a bug of an actor)
        self.fee = int(genesis.params.get("min_fee", 1_000))

    @property
    def height(self) -> int:
        return self.parent.height

    def tx(self, key: KeyPair, tx_type: int, payload: Any) -> Tx:
        """Sign `payload` as the sender's next transaction."""
        addr = key.address
        nonce = self.nonces.get(addr)
        if nonce is None:
            nonce = get_account(self.state, addr).nonce
        self.nonces[addr] = nonce + 1
        raw = sign_tx(key, self.genesis.chain_id, nonce, self.fee, tx_type,
                      self.runtime.tx_types[tx_type].codec.encode(payload))
        return decode_tx(raw)

    def seal(self, txs: list[Tx]) -> Outcome:
        """Build, sign and apply the next block; record each transaction's code and fee."""
        built: Built = self.runtime.build_block(self.state, self.parent, self.parent.timestamp_ms + BLOCK_MS,
                                                self.proposer, txs)
        assert built.block is not None
        self.parent = built.block.header
        self.blocks.append(built.block)
        for tx, exc in built.rejected:
            self.refused.append(f"{exc.code.name}: {exc.detail}")
            self.nonces.pop(tx.sender_address, None)
        out = Outcome(self.height)
        for tx, receipt in zip(built.included, built.receipts, strict=True):
            self.fees[tx.sender_address] += receipt.fee
            out.codes[tx.id] = receipt.code
            if receipt.code:
                code = by_number(receipt.code)
                self.failed[code.name if code else str(receipt.code)] += 1
        return out

    @property
    def state_root(self) -> bytes:
        return self.parent.state_root

