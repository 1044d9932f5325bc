"""The anchored proof document: a Merkle proof, the headers up to an anchored block, and the anchor's EVM evidence.

Layout (JSON, docs/anchoring.md):
  format           "ailedger/anchored-proof/v1"
  kind             "receipt" | "account"
  ledger_chain_id  the ledger chain id (each header names it too)
  anchor           evm_chain_id, contract, tx_hash, evm_block, height, block_hash, state_root, receipts_root
  headers          hex-encoded headers, consecutive heights, from the proven block up to the anchored one
  proof            the plain proof of chain/proofs.py (receipt_proof_json or AccountProof.to_json)

Why whole encoded headers: the verifier re-hashes them itself, so nothing in the document is taken
on trust except what the EVM chain confirms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ailedger.chain.anchor.record import Anchor
from ailedger.chain.block import HEADER, BlockHeader
from ailedger.core import errors
from ailedger.core.errors import LedgerError

FORMAT = "ailedger/anchored-proof/v1"
KINDS = ("receipt", "account")


@dataclass(frozen=True)
class ProofDocument:
    kind: str
    ledger_chain_id: str
    evm_chain_id: int
    contract: str
    tx_hash: str
    anchor: Anchor
    headers: list[BlockHeader]
    proof: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": self.kind, "ledger_chain_id": self.ledger_chain_id,
                "anchor": {"evm_chain_id": self.evm_chain_id, "contract": self.contract, "tx_hash": self.tx_hash,
                           **self.anchor.to_json()},
                "headers": [h.encode().hex() for h in self.headers], "proof": self.proof}


def _bytes32(text: Any, what: str) -> bytes:
    raw = bytes.fromhex(text)
    if len(raw) != 32:
        raise ValueError(f"{what} is not 32 bytes")
    return raw


def parse_document(doc: Any) -> ProofDocument:
    """The document's fields, shape-checked; a malformed one is anchor_proof_invalid, never a traceback."""
    try:
        if doc["format"] != FORMAT or doc["kind"] not in KINDS:
            raise ValueError(f"not an {FORMAT} document of kind {' or '.join(KINDS)}")
        a = doc["anchor"]
        ints = (a["evm_chain_id"], a["height"], a["evm_block"])
        if not all(type(i) is int and i >= 0 for i in ints):
            raise ValueError("evm_chain_id, height and evm_block must be whole numbers")
        anchor = Anchor(a["height"], _bytes32(a["block_hash"], "block_hash"), _bytes32(a["state_root"], "state_root"),
                        _bytes32(a["receipts_root"], "receipts_root"), a["evm_block"])
        headers = [HEADER.decode(bytes.fromhex(h)) for h in doc["headers"]]
        if not isinstance(doc["proof"], dict) or not isinstance(doc["ledger_chain_id"], str):
            raise ValueError("proof must be an object and ledger_chain_id a string")
        return ProofDocument(doc["kind"], doc["ledger_chain_id"], a["evm_chain_id"], str(a["contract"]),
                             str(a["tx_hash"]), anchor, headers, doc["proof"])
    except LedgerError as exc:
        raise LedgerError(errors.ANCHOR_PROOF_INVALID, f"a header does not decode: {exc.code.name} {exc.detail}"
                          ) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(errors.ANCHOR_PROOF_INVALID, f"malformed document: {exc.__class__.__name__} {exc}") from exc
