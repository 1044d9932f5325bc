"""JSON views of ledger objects, shared by the HTTP API and the embedded CLI so both print the same."""

from __future__ import annotations

import dataclasses
from typing import Any

from ailedger.chain.block import Block
from ailedger.chain.receipt import Receipt
from ailedger.chain.runtime import Runtime
from ailedger.chain.tx import Tx
from ailedger.core.address import encode_address
from ailedger.core.errors import LedgerError


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return encode_address(value) if len(value) == 20 else value.hex()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def decoded_payload(runtime: Runtime, tx: Tx) -> Any:
    """The payload by its type's codec, dataclasses as dicts (raw bytes kept); None if the runtime cannot read it."""
    kind = runtime.tx_types.get(tx.type)
    if kind is None:
        return None
    try:
        value = kind.codec.decode(tx.payload)
    except LedgerError:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def payload_json(runtime: Runtime, tx: Tx) -> Any:
    return _jsonable(decoded_payload(runtime, tx))


def tx_json(runtime: Runtime, tx: Tx, receipt: Receipt | None = None, height: int | None = None,
            position: int | None = None) -> dict[str, Any]:
    kind = runtime.tx_types.get(tx.type)
    out: dict[str, Any] = {
        "id": tx.id.hex(), "chain_id": tx.chain_id, "sender": encode_address(tx.sender_address),
        "sender_public_key": tx.sender.hex(), "nonce": tx.nonce, "fee": tx.fee, "type": tx.type,
        "type_name": kind.name if kind else None, "payload": payload_json(runtime, tx), "raw": tx.raw.hex(),
    }
    if receipt is not None:
        out["receipt"] = receipt.to_json()
    if height is not None:
        out["height"] = height
        out["position"] = position
    return out


def block_json(runtime: Runtime, block: Block, receipts: list[Receipt], txs: list[Tx]) -> dict[str, Any]:
    h = block.header
    return {"header": h.to_json(), "signature": block.signature.hex(),
            "txs": [tx_json(runtime, tx, r, h.height, i) for i, (tx, r) in enumerate(zip(txs, receipts, strict=True))]}
