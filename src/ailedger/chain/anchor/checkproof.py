"""`anchor check-proof`: check an anchored proof document with nothing but an EVM RPC endpoint.

The chain of trust, each link checked here:
1. the EVM chain is the one the document names, and the contract address runs exactly the
   LedgerAnchor code this package was built from (its rules: one anchorer, increasing heights);
2. the named EVM transaction succeeded, called that contract, and emitted the Anchored event with
   the document's height, block hash and roots (and the contract still holds them);
3. the headers hash one into the next, by parent hash, up to the anchored block hash;
4. the Merkle proof hashes the receipt (or account) up to the first header's receipts (or state) root.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, Protocol

from ailedger.chain.anchor.proofdoc import ProofDocument
from ailedger.chain.anchor.record import Anchor
from ailedger.chain.proofs import verify_account_proof, verify_receipt_proof
from ailedger.core import errors
from ailedger.core.errors import LedgerError


class EvidenceSource(Protocol):
    """The EVM side of the check (AnchorContract)."""

    address: str

    def evm_chain_id(self) -> int: ...
    def check_code(self) -> None: ...
    def ledger_chain_id(self) -> str: ...
    def anchored_by_tx(self, tx_hash: str) -> Anchor: ...
    def anchor_at(self, height: int) -> Anchor | None: ...


def _refuse(why: str) -> LedgerError:
    return LedgerError(errors.ANCHOR_PROOF_INVALID, why)


def check_anchor(doc: ProofDocument, evm: EvidenceSource) -> Anchor:
    """Links 1 and 2: the anchor as the EVM chain records it, equal to the document's."""
    if evm.evm_chain_id() != doc.evm_chain_id:
        raise _refuse(f"the RPC serves EVM chain {evm.evm_chain_id()}, the document names {doc.evm_chain_id}")
    try:
        evm.check_code()
    except LedgerError as exc:
        raise _refuse(f"the contract is not a LedgerAnchor: {exc.detail}") from exc
    if evm.ledger_chain_id() != doc.ledger_chain_id:
        raise _refuse(f"the contract anchors ledger chain {evm.ledger_chain_id()!r}, not {doc.ledger_chain_id!r}")
    posted = evm.anchored_by_tx(doc.tx_hash)
    held = evm.anchor_at(doc.anchor.height)
    for source, a in (("the anchor transaction", posted), ("the contract's storage", held)):
        if a is None or (a.height, a.block_hash, a.state_root, a.receipts_root) != (
                doc.anchor.height, doc.anchor.block_hash, doc.anchor.state_root, doc.anchor.receipts_root):
            raise _refuse(f"{source} does not hold the document's anchor at height {doc.anchor.height}")
    return posted


def check_headers(doc: ProofDocument, anchor: Anchor) -> None:
    """Link 3: consecutive headers of this ledger chain, each naming the previous, ending in the anchored block."""
    if not doc.headers:
        raise _refuse("the document has no headers")
    for prev, nxt in pairwise(doc.headers):
        if nxt.height != prev.height + 1 or nxt.parent != prev.hash:
            raise _refuse(f"header {nxt.height} does not extend header {prev.height}")
    if any(h.chain_id != doc.ledger_chain_id for h in doc.headers):
        raise _refuse("a header belongs to another ledger chain")
    if not anchor.matches(doc.headers[-1]):
        raise _refuse(f"the last header (height {doc.headers[-1].height}) is not the anchored block")


def check_document(doc: ProofDocument, evm: EvidenceSource) -> dict[str, Any]:
    """All four links; returns what is proven, or raises anchor_proof_invalid naming the link that broke."""
    anchor = check_anchor(doc, evm)
    check_headers(doc, anchor)
    first = doc.headers[0]
    try:
        if doc.kind == "receipt":
            if doc.proof.get("height") != first.height:
                raise _refuse("the receipt proof is for another block than the first header")
            proven: dict[str, Any] = verify_receipt_proof(doc.proof, first.receipts_root).to_json()
        else:
            if len(doc.headers) != 1 or doc.proof.get("height") != anchor.height:
                raise _refuse("an account proof must be for the anchored block itself")
            account = verify_account_proof(doc.proof, anchor.state_root)
            proven = {"address": doc.proof["address"], **account.to_json()}
    except LedgerError as exc:
        if exc.code is errors.ANCHOR_PROOF_INVALID:
            raise
        raise _refuse(f"the Merkle proof fails: {exc.detail}") from exc
    return {"ok": True, "kind": doc.kind, "height": first.height, "proven": proven,
            "anchor": {"height": anchor.height, "evm_block": anchor.evm_block, "tx_hash": doc.tx_hash,
                       "contract": evm.address, "evm_chain_id": doc.evm_chain_id},
            "headers_checked": len(doc.headers)}
