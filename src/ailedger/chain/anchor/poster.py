"""`anchor start`: post an anchor every N blocks, for as long as it runs, riding out EVM outages.

Why progress is read from the contract (`lastHeight`) and never kept locally: the contract is the
truth about what is anchored, so a restart, a crash between sending and mining, or an EVM node that
lost its pending transactions all resume from the same place. Why the ledger never waits for this
loop: the node is another process and this loop only reads its store, so an EVM outage delays
anchors and never blocks.

Before posting, the loop checks that the blocks since the last anchor extend the anchored block by
parent hash: it will not anchor a fork of what it anchored before (`anchor verify` is the full audit).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ailedger.chain.anchor.contract import Sent
from ailedger.chain.anchor.evmkey import EvmKey
from ailedger.chain.anchor.history import ChainReader, linked_headers
from ailedger.chain.anchor.record import Anchor, due_height
from ailedger.core import errors
from ailedger.core.errors import LedgerError


class AnchorTarget(Protocol):
    """The contract as the loop uses it (AnchorContract)."""

    rpc: str
    address: str

    def check_code(self) -> None: ...
    def ledger_chain_id(self) -> str: ...
    def anchorer(self) -> str: ...
    def last_height(self) -> int: ...
    def anchor_at(self, height: int) -> Anchor | None: ...
    def post(self, key: EvmKey, a: Anchor) -> Sent: ...


@dataclass
class Backoff:
    """Waits that double from `first_s` up to `max_s`, back to `first_s` once the RPC answers again."""

    first_s: float = 0.5
    max_s: float = 30.0
    _next: float = 0.0

    def next_wait(self) -> float:
        wait = self._next or self.first_s
        self._next = min(wait * 2, self.max_s)
        return wait

    def reset(self) -> None:
        self._next = 0.0


@dataclass(frozen=True)
class Posted:
    anchor: Anchor
    tx_hash: str

    def to_json(self) -> dict[str, object]:
        return {**self.anchor.to_json(), "tx_hash": self.tx_hash}


@dataclass
class Poster:
    reader: ChainReader
    target: AnchorTarget
    key: EvmKey
    every: int
    say: Callable[[str], None]
    poll_s: float = 2.0
    backoff: Backoff = field(default_factory=Backoff)
    sleep: Callable[[float], None] = time.sleep
    _checked: bool = False

    def preflight(self) -> None:
        """Refuse, before spending gas, a contract for another chain or one whose anchorer is not our key."""
        self.target.check_code()
        theirs = self.target.ledger_chain_id()
        if theirs != self.reader.genesis.chain_id:
            raise LedgerError(errors.ANCHOR_WRONG_CHAIN, f"the contract anchors {theirs!r}, the data directory "
                              f"holds {self.reader.genesis.chain_id!r}")
        anchorer = self.target.anchorer()
        if anchorer.lower() != self.key.address.lower():
            raise LedgerError(errors.ANCHOR_NOT_ANCHORER, f"the contract's anchorer is {anchorer}, the key is "
                              f"{self.key.address}")
        self._checked = True

    def step(self) -> tuple[int, Posted | None]:
        """Post the due anchor if there is one; returns (last anchored height, what was posted)."""
        if not self._checked:
            self.preflight()
        last = self.target.last_height()
        due = due_height(self.reader.height(), last, self.every)
        if due is None:
            return last, None
        headers = linked_headers(self.reader, last if last > 0 else due, due)
        if last > 0:
            anchored = self.target.anchor_at(last)
            if anchored is None or not anchored.matches(headers[0]):
                raise LedgerError(errors.ANCHOR_MISMATCH, f"local block {last} differs from its anchor: the chain "
                                  "was rewritten since; run `ailedger anchor verify`")
        a = Anchor.of(headers[-1])
        sent = self.target.post(self.key, a)
        return due, Posted(Anchor(a.height, a.block_hash, a.state_root, a.receipts_root, sent.evm_block), sent.tx_hash)

    def run(self, until_height: int | None = None) -> list[Posted]:
        """Loop until the contract's last height reaches `until_height` (forever if None).

        Only an RPC outage is waited out; any other error (wrong contract, wrong key, a rewritten
        chain) stops the loop, because retrying cannot fix it.
        """
        posted: list[Posted] = []
        down = False
        while True:
            try:
                last, new = self.step()
            except LedgerError as exc:
                if exc.code is not errors.ANCHOR_RPC_DOWN:
                    raise
                wait = self.backoff.next_wait()
                self.say(f"EVM RPC {self.target.rpc} is down ({exc.detail}); retrying in {wait:.1f} s "
                         "(the ledger keeps producing blocks meanwhile)")
                down = True
                self.sleep(wait)
                continue
            if down:
                self.say(f"EVM RPC {self.target.rpc} answers again; resuming from anchored height {last}")
                down = False
                self.backoff.reset()
            if new is not None:
                posted.append(new)
                self.say(f"anchored block {new.anchor.height} ({new.anchor.block_hash.hex()[:16]}…) in EVM "
                         f"transaction {new.tx_hash} (EVM block {new.anchor.evm_block})")
            if until_height is not None and last >= until_height:
                return posted
            if new is None:
                self.sleep(self.poll_s)
