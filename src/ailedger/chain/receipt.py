"""Receipts: the outcome of each transaction, committed to by the block's receipts root."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ailedger.core import errors
from ailedger.core.encoding import AMOUNT, B32, U16, Record

OK = 0


@dataclass(frozen=True)
class Receipt:
    tx_id: bytes
    code: int
    fee: int

    @property
    def ok(self) -> bool:
        return self.code == OK

    def to_json(self) -> dict[str, object]:
        err = errors.by_number(self.code)
        return {"tx_id": self.tx_id.hex(), "ok": self.ok, "code": self.code,
                "error": err.name if err else None, "message": err.message if err else None, "fee": self.fee}


RECEIPT: Record[Receipt] = Record(Receipt, {"tx_id": B32, "code": U16, "fee": AMOUNT})
_TAIL = struct.Struct(">HQ")


def encode_receipt(r: Receipt) -> bytes:
    """Same bytes as RECEIPT.encode (the tests check it), without the generic codec's per-field calls."""
    return r.tx_id + _TAIL.pack(r.code, r.fee)
