"""The genesis document: chain id, start time, block proposer, initial balances and parameters.

It is plain JSON so people can read and edit it; `Genesis.parse` validates every field and the
canonical form (sorted keys, no spaces) is what the chain commits to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ailedger.core import errors
from ailedger.core.address import decode_address, encode_address
from ailedger.core.encoding import MAX_AMOUNT
from ailedger.core.errors import LedgerError


@dataclass(frozen=True)
class Allocation:
    address: bytes
    balance: int
    stake: int = 0


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    timestamp_ms: int
    proposer: bytes
    allocations: list[Allocation] = field(default_factory=list)
    params: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "timestamp_ms": self.timestamp_ms,
            "proposer": self.proposer.hex(),
            "allocations": [{"address": encode_address(a.address), "balance": a.balance, "stake": a.stake}
                            for a in self.allocations],
            "params": dict(sorted(self.params.items())),
        }

    def canonical(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @staticmethod
    def parse(text: str | bytes) -> Genesis:
        try:
            doc = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise LedgerError(errors.BAD_GENESIS, f"not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise LedgerError(errors.BAD_GENESIS, "the document must be a JSON object")
        return Genesis.from_json(doc)

    @staticmethod
    def from_json(doc: dict[str, Any]) -> Genesis:
        def need(obj: dict[str, Any], key: str, kind: type) -> Any:
            if key not in obj or not isinstance(obj[key], kind) or (isinstance(obj[key], bool) and kind is int):
                raise LedgerError(errors.BAD_GENESIS, f"field {key!r} must be a {kind.__name__}")
            return obj[key]

        def amount(obj: dict[str, Any], key: str) -> int:
            v = obj.get(key, 0)
            if isinstance(v, str) and v.isascii() and v.isdigit():  # "²".isdigit() is True, int("²") fails
                v = int(v)
            if type(v) is not int or not 0 <= v <= MAX_AMOUNT:
                raise LedgerError(errors.BAD_GENESIS, f"{key} {v!r} must be an integer of micro-units")
            return v

        chain_id = need(doc, "chain_id", str)
        try:
            size = len(chain_id.encode())
        except UnicodeEncodeError as exc:  # JSON may carry a lone surrogate ("\ud800"), which is not text
            raise LedgerError(errors.BAD_GENESIS, "chain_id is not valid Unicode text") from exc
        if not 0 < size <= 32:
            raise LedgerError(errors.BAD_GENESIS, "chain_id must be 1 to 32 bytes")
        ts = need(doc, "timestamp_ms", int)
        if not 0 <= ts < 2**63:
            raise LedgerError(errors.BAD_GENESIS, "timestamp_ms out of range")
        try:
            proposer = bytes.fromhex(need(doc, "proposer", str))
        except ValueError as exc:
            raise LedgerError(errors.BAD_GENESIS, "proposer must be a hex public key") from exc
        if len(proposer) != 32:
            raise LedgerError(errors.BAD_GENESIS, "proposer must be a 32-byte Ed25519 public key")
        allocs = []
        seen = set()
        items = doc.get("allocations", [])
        if not isinstance(items, list):
            raise LedgerError(errors.BAD_GENESIS, "allocations must be a list")
        for item in items:
            if not isinstance(item, dict):
                raise LedgerError(errors.BAD_GENESIS, "each allocation must be an object")
            try:
                addr = decode_address(need(item, "address", str))
            except LedgerError as exc:
                raise LedgerError(errors.BAD_GENESIS, f"allocation address: {exc.detail}") from exc
            if addr in seen:
                raise LedgerError(errors.BAD_GENESIS, f"address {item['address']} allocated twice")
            seen.add(addr)
            allocs.append(Allocation(addr, amount(item, "balance"), amount(item, "stake")))
        if sum(a.balance + a.stake for a in allocs) > MAX_AMOUNT:
            raise LedgerError(errors.BAD_GENESIS, "total supply exceeds 2^63-1 micro-units")
        params = doc.get("params", {})
        if not isinstance(params, dict) or not all(type(v) is int for v in params.values()):
            raise LedgerError(errors.BAD_GENESIS, "params must map names to integers")
        return Genesis(chain_id, ts, proposer, allocs, dict(params))
