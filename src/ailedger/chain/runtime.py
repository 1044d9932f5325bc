"""The deterministic state machine: `apply_tx`, `execute_block`, and genesis.

Reads like a specification: a block is its transactions applied in order, then each module's
end-of-block hook, then the proposer is paid the block's fees. Nothing here reads a clock, draws
randomness, touches a float or does I/O; the same blocks always give the same roots.

Two kinds of failure, and the fee rule (docs/fees.md):
* admission failures (bad signature, wrong chain id, nonce replayed or skipped, fee below
  `min_fee`, fee above the balance, unknown type, undecodable payload) are raised before any write.
  Such a transaction is refused by the mempool and makes any block that includes it invalid.
* execution failures (anything the module's handler raises) roll back the handler's writes; the
  transaction still consumes its nonce and pays its full fee, and its receipt carries the code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ailedger.chain import accounts, params
from ailedger.chain.block import VERSION, Block, BlockHeader
from ailedger.chain.genesis import Genesis
from ailedger.chain.module import BlockContext, Module, TxType
from ailedger.chain.params import ParamRegistry, ParamSpec
from ailedger.chain.receipt import OK, Receipt, encode_receipt
from ailedger.chain.state import Journal, State
from ailedger.chain.tx import Tx, decode_tx
from ailedger.core import errors
from ailedger.core.address import address_of
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import tagged
from ailedger.core.keys import KeyPair
from ailedger.core.merkle import merkle_root

PROPOSER_KEY = b"chain/proposer"
GENESIS_KEY = b"chain/genesis"

CHAIN_PARAMS = [
    ParamSpec("max_block_txs", 1_000, 1, 100_000, "transactions", "Most transactions one block may hold."),
]


@dataclass(frozen=True)
class Checked:
    """A transaction that passed the stateless checks, with its payload decoded."""

    tx: Tx
    kind: TxType
    payload: Any


class Runtime:
    """A set of modules assembled into one state machine."""

    def __init__(self, modules: Sequence[Module]) -> None:
        self.modules = list(modules)
        self.tx_types: dict[int, TxType] = {}
        self.params = ParamRegistry()
        for spec in CHAIN_PARAMS:
            self.params.add(spec)
        names = set()
        for m in self.modules:
            if m.name in names:
                raise ValueError(f"module {m.name} registered twice")
            names.add(m.name)
            for t in m.tx_types:
                if t.id >> 8 != m.number or t.id in self.tx_types:
                    raise ValueError(f"tx type {t.id:#06x} of {m.name} clashes or is outside its range")
                self.tx_types[t.id] = t
            for spec in m.params:
                self.params.add(spec)
        for m in self.modules:
            m.bind(self.params)

    # -- genesis ---------------------------------------------------------------------------------

    def genesis_state(self, genesis: Genesis) -> State:
        state = State()
        self.params.write_genesis(state, genesis.params)
        state.set(PROPOSER_KEY, genesis.proposer)
        state.set(GENESIS_KEY, tagged(b"genesis", genesis.canonical()))
        for m in self.modules:
            m.init_genesis(state, genesis)
        return state

    def genesis_block(self, genesis: Genesis) -> tuple[Block, State]:
        state = self.genesis_state(genesis)
        root, _ = state.commit()
        header = BlockHeader(VERSION, genesis.chain_id, 0, bytes(32), genesis.timestamp_ms, genesis.proposer,
                             0, merkle_root([]), merkle_root([]), root)
        return Block(header, bytes(64), []), state

    # -- transactions ----------------------------------------------------------------------------

    def check_stateless(self, tx: Tx, chain_id: str) -> Checked:
        """Checks that need no state: chain id, known type, payload shape, signature."""
        if tx.chain_id != chain_id:
            raise LedgerError(errors.WRONG_CHAIN, f"transaction is for {tx.chain_id!r}, this chain is {chain_id!r}")
        kind = self.tx_types.get(tx.type)
        if kind is None:
            raise LedgerError(errors.UNKNOWN_TX_TYPE, f"type {tx.type:#06x}")
        try:
            payload = kind.codec.decode(tx.payload)
        except LedgerError as exc:  # keep the precise code (integer_out_of_range, truncated_encoding...)
            raise LedgerError(exc.code, f"{kind.name} payload: {exc.detail}") from exc
        if not tx.signature_ok():
            raise LedgerError(errors.BAD_SIGNATURE)
        return Checked(tx, kind, payload)

    def apply_tx(self, state: Journal, ctx: BlockContext, c: Checked) -> Receipt:
        """Charge the fee and nonce, then run the handler; handler failures are rolled back."""
        tx = c.tx
        sender = tx.sender_address
        acct = accounts.get_account(state, sender)
        if tx.nonce != acct.nonce:
            code = errors.NONCE_REPLAYED if tx.nonce < acct.nonce else errors.NONCE_GAP
            raise LedgerError(code, f"account nonce is {acct.nonce}, transaction has {tx.nonce}")
        if tx.fee < params.get(state, "min_fee"):
            raise LedgerError(errors.FEE_TOO_LOW, f"fee {tx.fee} < min_fee {params.get(state, 'min_fee')}")
        if acct.balance < tx.fee:
            raise LedgerError(errors.INSUFFICIENT_BALANCE, f"balance {acct.balance} cannot pay fee {tx.fee}")
        acct.balance -= tx.fee
        acct.nonce += 1
        accounts.put_account(state, sender, acct)
        mark = state.checkpoint()
        try:
            c.kind.handler(state, ctx, tx, c.payload)
        except LedgerError as exc:
            state.revert(mark)
            return Receipt(tx.id, exc.code.number, tx.fee)
        return Receipt(tx.id, OK, tx.fee)

    # -- blocks ----------------------------------------------------------------------------------

    def end_block(self, state: Journal, ctx: BlockContext, fees: int) -> None:
        for m in self.modules:
            m.end_block(state, ctx)
        if fees:
            accounts.credit(state, address_of(ctx.proposer), fees)

    def context(self, parent: BlockHeader, timestamp_ms: int, proposer: bytes) -> BlockContext:
        return BlockContext(parent.chain_id, parent.height + 1, timestamp_ms, proposer, parent.hash)

    def build_block(self, state: State, parent: BlockHeader, timestamp_ms: int, key: KeyPair,
                    candidates: Iterable[Tx | Checked]) -> Built:
        """Proposer side: apply what applies, skip what fails admission, seal and sign the block.

        Candidates already `Checked` (by this node's mempool) skip the signature check here.
        """
        ctx = self.context(parent, max(timestamp_ms, parent.timestamp_ms), key.public_key)
        limit = params.get(state, "max_block_txs")
        built = Built()
        fees = 0
        for cand in candidates:
            if len(built.included) >= limit:
                break
            tx = cand.tx if isinstance(cand, Checked) else cand
            try:
                checked = cand if isinstance(cand, Checked) else self.check_stateless(tx, ctx.chain_id)
                receipt = self.apply_tx(state, ctx, checked)
            except LedgerError as exc:
                built.rejected.append((tx, exc))
                continue
            state.release()
            fees += receipt.fee
            built.included.append(tx)
            built.receipts.append(receipt)
        self.end_block(state, ctx, fees)
        state_root, built.changes = state.commit()
        header = BlockHeader(VERSION, ctx.chain_id, ctx.height, parent.hash, ctx.timestamp_ms, key.public_key,
                             len(built.included), merkle_root([t.raw for t in built.included]),
                             merkle_root(built.encoded_receipts()), state_root)
        built.block = Block(header, header.sign(key), [t.raw for t in built.included])
        return built

    def validate_block(self, state: State, parent: BlockHeader, block: Block) -> Built:
        """Verifier side: check the header, re-execute, and require every root to match.

        On any failure the pending writes are discarded, so `state` is as it was.
        """
        try:
            return self._validate(state, parent, block)
        except LedgerError:
            state.discard()
            raise

    def _validate(self, state: State, parent: BlockHeader, block: Block) -> Built:
        h = block.header
        def bad(why: str) -> LedgerError:
            return LedgerError(errors.BAD_BLOCK, f"block {h.height}: {why}")
        if h.version != VERSION or h.chain_id != parent.chain_id:
            raise bad("wrong version or chain id")
        if h.height != parent.height + 1 or h.parent != parent.hash:
            raise bad("does not extend its parent")
        if h.timestamp_ms < parent.timestamp_ms:
            raise bad("timestamp goes backwards")
        if state.get(PROPOSER_KEY) != h.proposer:
            raise bad("proposer is not the authorised one")
        if not h.signature_ok(block.signature):
            raise bad("proposer signature is invalid")
        if h.tx_count != len(block.txs) or len(block.txs) > params.get(state, "max_block_txs"):
            raise bad("transaction count is wrong or above max_block_txs")
        if merkle_root(block.txs) != h.tx_root:
            raise LedgerError(errors.ROOT_MISMATCH, f"block {h.height}: transactions root")
        ctx = self.context(parent, h.timestamp_ms, h.proposer)
        built = Built(block=block)
        fees = 0
        for i, raw in enumerate(block.txs):
            try:
                tx = decode_tx(raw)
                receipt = self.apply_tx(state, ctx, self.check_stateless(tx, ctx.chain_id))
            except LedgerError as exc:
                raise bad(f"transaction {i} fails admission: {exc.code.name} {exc.detail}") from exc
            state.release()
            fees += receipt.fee
            built.included.append(tx)
            built.receipts.append(receipt)
        self.end_block(state, ctx, fees)
        if merkle_root(built.encoded_receipts()) != h.receipts_root:
            raise LedgerError(errors.ROOT_MISMATCH, f"block {h.height}: receipts root")
        root, built.changes = state.commit()
        if root != h.state_root:
            state.undo_commit()
            raise LedgerError(errors.ROOT_MISMATCH, f"block {h.height}: state root")
        return built


@dataclass
class Built:
    """A block with everything the store needs to persist it atomically."""

    block: Block | None = None
    included: list[Tx] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    changes: list[tuple[bytes, int, bytes]] = field(default_factory=list)
    rejected: list[tuple[Tx, LedgerError]] = field(default_factory=list)
    _encoded: list[bytes] | None = None

    def encoded_receipts(self) -> list[bytes]:
        """Receipt bytes, encoded once for both the receipts root and the store."""
        if self._encoded is None or len(self._encoded) != len(self.receipts):
            self._encoded = [encode_receipt(r) for r in self.receipts]
        return self._encoded
