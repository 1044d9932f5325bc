"""A small driver for Datanet tests: a runtime, a state, and one call per block, no store needed."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ailedger.chain.accounts import PREFIX as ACCT_PREFIX
from ailedger.chain.accounts import decode_account, get_account
from ailedger.chain.block import Block, BlockHeader
from ailedger.chain.genesis import Allocation, Genesis
from ailedger.chain.receipt import Receipt
from ailedger.chain.state import State
from ailedger.chain.tx import Tx, decode_tx, sign_tx
from ailedger.core.errors import by_number
from ailedger.core.keys import KeyPair
from ailedger.core.merkle import merkle_root
from ailedger.datanet import payloads as t
from ailedger.datanet.state import RECORD, FeeSplit, Status
from ailedger.modules import default_runtime

CHAIN = "dn-test"
FEE = 1_000
RUNTIME = default_runtime()
PROPOSER = KeyPair.from_seed(b"\x42" * 32)


def rh(i: int) -> bytes:
    """A deterministic 32-byte record hash."""
    return i.to_bytes(4, "big") * 8


def create(name: str, stake: int = 100_000, quorum: int = 2, window: int = 5, split: tuple[int, ...] = (
        7_000, 1_000, 1_000, 1_000), **kw: Any) -> t.CreateDatanet:
    return t.CreateDatanet(name, kw.pop("topic", "news"), kw.pop("description", "d"), kw.pop("schema_hash", bytes(32)),
                           kw.pop("licence", "CC-BY-4.0"), stake, quorum, window, FeeSplit(*split), **kw)


def contribute(name: str, hashes: list[bytes], root: bytes | None = None) -> t.Contribute:
    return t.Contribute(name, hashes, merkle_root(hashes) if root is None else root)


def votes(name: str, *pairs: tuple[bytes, int]) -> t.VoteBatch:
    return t.VoteBatch(name, [t.Ballot(r, a) for r, a in pairs])


def reject(name: str, *hashes: bytes, gate: int = 3, reason: int = 7) -> t.GateVerdict:
    return t.GateVerdict(name, [t.Rejection(h, gate, reason) for h in hashes])


CODECS = {type_id: kind.codec for type_id, kind in RUNTIME.tx_types.items()}


class Sim:
    def __init__(self, allocations: list[Allocation], params: dict[str, int] | None = None) -> None:
        self.genesis = Genesis(CHAIN, 1_000, PROPOSER.public_key, allocations, params or {})
        block0, self.state = RUNTIME.genesis_block(self.genesis)
        self.parent: BlockHeader = block0.header
        self.genesis_header = block0.header
        self.blocks: list[Block] = []

    @property
    def height(self) -> int:
        return self.parent.height

    def tx(self, key: KeyPair, tx_type: int, payload: Any, pending: Counter[bytes] | None = None,
           fee: int = FEE) -> Tx:
        nonce = get_account(self.state, key.address).nonce + (pending[key.address] if pending is not None else 0)
        if pending is not None:
            pending[key.address] += 1
        return decode_tx(sign_tx(key, CHAIN, nonce, fee, tx_type, CODECS[tx_type].encode(payload)))

    def block(self, *items: tuple[KeyPair, int, Any]) -> list[Receipt]:
        pending: Counter[bytes] = Counter()
        return self.block_of([self.tx(k, ty, p, pending) for k, ty, p in items])

    def block_of(self, txs: list[Tx]) -> list[Receipt]:
        built = RUNTIME.build_block(self.state, self.parent, self.parent.timestamp_ms + 1_000, PROPOSER, txs)
        assert built.block is not None and not built.rejected, built.rejected
        self.parent = built.block.header
        self.blocks.append(built.block)
        return built.receipts

    def ok(self, *items: tuple[KeyPair, int, Any]) -> None:
        codes = [r.code for r in self.block(*items)]
        assert codes == [0] * len(items), [by_number(c).name if by_number(c) else c for c in codes]  # type: ignore[union-attr]

    def until(self, height: int) -> None:
        while self.height < height:
            self.block()

    def copy(self) -> Sim:
        other = Sim.__new__(Sim)
        other.__dict__.update(self.__dict__)
        other.state = State(self.state.rows())
        other.blocks = list(self.blocks)
        return other

    def balance(self, key: KeyPair) -> int:
        return get_account(self.state, key.address).balance

    def stake(self, key: KeyPair) -> int:
        return get_account(self.state, key.address).stake


def supply(state: State) -> int:
    """Balances, stakes and unbonding of every account + escrow of pending records + every pool."""
    total = 0
    for k, v in state.items():
        if k.startswith(ACCT_PREFIX):
            a = decode_account(v)
            total += a.balance + a.stake + a.unbonding
        elif k.startswith(b"dn/rec/"):
            r = RECORD.decode(v)
            total += r.stake if r.status == Status.PENDING else 0
        elif k.startswith(b"dn/pool/"):
            total += int.from_bytes(v, "big")
    return total
