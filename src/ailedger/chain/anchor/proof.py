"""`anchor prove`: a receipt or an account, proven from the local chain up to an anchored block.

Why the local data is checked before a document is written: a proof built from data that no longer
matches its anchor would only fail later, in a stranger's hands; it is refused here with the block
that disagrees.
"""

from __future__ import annotations

from typing import Protocol

from ailedger.chain.accounts import account_key, decode_account
from ailedger.chain.anchor.history import BrokenBlock, ChainReader, Progress, linked_headers, state_at
from ailedger.chain.anchor.proofdoc import ProofDocument
from ailedger.chain.anchor.record import Anchor, covering
from ailedger.chain.block import BlockHeader
from ailedger.chain.proofs import AccountProof, receipt_proof_json
from ailedger.chain.receipt import encode_receipt
from ailedger.chain.runtime import Runtime
from ailedger.core import errors
from ailedger.core.address import encode_address
from ailedger.core.errors import LedgerError
from ailedger.core.merkle import MerkleTree


class AnchorSource(Protocol):
    """Where anchors come from: the deployed contract (AnchorContract)."""

    address: str

    def evm_chain_id(self) -> int: ...
    def anchors(self) -> list[Anchor]: ...
    def anchor_tx(self, a: Anchor) -> str: ...


def headers_up_to(reader: ChainReader, start: int, a: Anchor) -> list[BlockHeader]:
    """Headers `start`..`a.height`, linked by parent hash and ending in the anchored block."""
    headers = linked_headers(reader, start, a.height)
    if not a.matches(headers[-1]):
        raise LedgerError(errors.ANCHOR_MISMATCH, f"block {a.height} differs from its anchor; run `anchor verify`")
    return headers


def _document(kind: str, reader: ChainReader, source: AnchorSource, a: Anchor, headers: list[BlockHeader],
              body: dict[str, object]) -> ProofDocument:
    return ProofDocument(kind, reader.genesis.chain_id, source.evm_chain_id(), source.address, source.anchor_tx(a), a,
                         headers, body)


def prove_receipt(reader: ChainReader, source: AnchorSource, tx_id: bytes) -> ProofDocument:
    """The receipt of included transaction `tx_id`, proven up to the first anchor at or above its block."""
    found = reader.find_tx(tx_id)
    if found is None:
        raise LedgerError(errors.NOT_FOUND, f"no included transaction {tx_id.hex()}")
    height, pos, _, receipt = found
    a = covering(source.anchors(), height)
    if a is None:
        raise LedgerError(errors.ANCHOR_NOT_YET, f"block {height} is above the last anchor")
    headers = headers_up_to(reader, height, a)
    tree = MerkleTree.from_data([encode_receipt(r) for r in reader.receipts(height)])
    if tree.root() != headers[0].receipts_root:
        raise LedgerError(errors.ANCHOR_MISMATCH, f"block {height}'s stored receipts differ from its receipts root")
    body = receipt_proof_json(receipt, height, headers[0].receipts_root, tree.proof(pos))
    return _document("receipt", reader, source, a, headers, body)


def prove_account(reader: ChainReader, runtime: Runtime, source: AnchorSource, address: bytes,
                  height: int | None = None, progress: Progress | None = None) -> ProofDocument:
    """The account as of an anchored height (the newest anchor by default), replaying to it if the head moved on."""
    anchors = source.anchors()
    if not anchors:
        raise LedgerError(errors.ANCHOR_NOT_YET, "nothing is anchored yet")
    a = anchors[-1] if height is None else next((x for x in anchors if x.height == height), None)
    if a is None:
        raise LedgerError(errors.ANCHOR_NOT_YET, f"height {height} is not anchored; anchored heights: "
                          f"{', '.join(str(x.height) for x in anchors[-10:])}")
    headers = headers_up_to(reader, a.height, a)
    try:
        state = state_at(reader, runtime, a.height, progress)
    except BrokenBlock as broken:
        raise LedgerError(errors.ANCHOR_MISMATCH, f"block {broken.height} no longer replays: "
                          f"{broken.cause.code.name} {broken.cause.detail}") from broken
    found = state.proof(account_key(address))
    if found is None or not found[0]:
        raise LedgerError(errors.NOT_FOUND, f"{encode_address(address)} holds nothing at height {a.height}")
    value, merkle = found
    body = AccountProof(address, decode_account(value), a.height, a.state_root, merkle).to_json()
    return _document("account", reader, source, a, headers, body)
