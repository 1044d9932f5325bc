"""Light-client proofs: one account, or one receipt, checked against a block header without a database.

A proof document is plain JSON so that any client can carry it; `verify_account_proof` and
`verify_receipt_proof` need nothing but the document and the root the verifier already trusts
(a header it got from somewhere it believes, or an anchored root).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ailedger.chain.accounts import Account, account_key, decode_account, encode_account
from ailedger.chain.receipt import RECEIPT, Receipt
from ailedger.chain.state import leaf_data
from ailedger.core import errors
from ailedger.core.address import decode_address, encode_address
from ailedger.core.errors import LedgerError
from ailedger.core.merkle import MerkleProof, verify_proof


def proof_to_json(p: MerkleProof) -> dict[str, Any]:
    return {"index": p.index, "size": p.size, "siblings": [s.hex() for s in p.siblings]}


def proof_from_json(doc: Any) -> MerkleProof:
    try:
        sibs = [bytes.fromhex(s) for s in doc["siblings"]]
        if any(len(s) != 32 for s in sibs):
            raise ValueError("sibling is not 32 bytes")
        index, size = doc["index"], doc["size"]
        if type(index) is not int or type(size) is not int:
            raise ValueError("index and size must be integers")
        return MerkleProof(index, size, sibs)
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(errors.BAD_PROOF, f"malformed proof: {exc}") from exc


@dataclass(frozen=True)
class AccountProof:
    address: bytes
    account: Account
    height: int
    state_root: bytes
    proof: MerkleProof

    def to_json(self) -> dict[str, Any]:
        return {"address": encode_address(self.address), "account": self.account.to_json(), "height": self.height,
                "state_root": self.state_root.hex(), "proof": proof_to_json(self.proof)}


def verify_account_proof(doc: dict[str, Any], trusted_state_root: bytes | None = None) -> Account:
    """Check an account proof document; returns the proven account or raises bad_proof.

    Without `trusted_state_root` the root inside the document is used, which only shows the
    document is self-consistent; a light client passes the root of a header it trusts.
    """
    try:
        address = decode_address(doc["address"])
        a = doc["account"]
        account = Account(a["balance"], a["nonce"], a["stake"], a["unbonding"])
        root = bytes.fromhex(doc["state_root"])
        proof = proof_from_json(doc["proof"])
        value = encode_account(account)
    except LedgerError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(errors.BAD_PROOF, f"malformed account proof: {exc}") from exc
    if trusted_state_root is not None and root != trusted_state_root:
        raise LedgerError(errors.BAD_PROOF, "the proof is for another state root than the trusted one")
    if not verify_proof(root, leaf_data(account_key(address), value), proof):
        raise LedgerError(errors.BAD_PROOF, "the account does not hash up to the state root")
    return decode_account(value)


def receipt_proof_json(receipt: Receipt, height: int, receipts_root: bytes, proof: MerkleProof) -> dict[str, Any]:
    return {"receipt": RECEIPT.encode(receipt).hex(), "height": height, "receipts_root": receipts_root.hex(),
            "proof": proof_to_json(proof)}


def verify_receipt_proof(doc: dict[str, Any], trusted_receipts_root: bytes | None = None) -> Receipt:
    """Check that a receipt is leaf `index` of a block's receipts root."""
    try:
        raw = bytes.fromhex(doc["receipt"])
        root = bytes.fromhex(doc["receipts_root"])
        proof = proof_from_json(doc["proof"])
        receipt = RECEIPT.decode(raw)
    except LedgerError as exc:
        raise LedgerError(errors.BAD_PROOF, f"malformed receipt: {exc.detail}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(errors.BAD_PROOF, f"malformed receipt proof: {exc}") from exc
    if trusted_receipts_root is not None and root != trusted_receipts_root:
        raise LedgerError(errors.BAD_PROOF, "the proof is for another receipts root than the trusted one")
    if not verify_proof(root, raw, proof):
        raise LedgerError(errors.BAD_PROOF, "the receipt does not hash up to the receipts root")
    return receipt
