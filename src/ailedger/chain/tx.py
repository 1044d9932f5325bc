"""The transaction envelope: who, which chain, which nonce, what fee, which module action, signed.

Layout (docs/encoding.md): u8 version=1 | text chain_id (<=32 B) | b32 sender public key | u64 nonce |
u64 fee | u16 type | bytes payload (<= 65,536 B) | b64 signature. The signature covers the
domain tag "ailedger/tx/v1" followed by everything before it; the transaction id is the tagged hash
of those same bytes, so it names the action independently of the signature.

Decoding is hand-rolled with `struct` because it runs once per transaction on the hot path; the
schema codec in core.encoding describes the same layout and the tests check both agree.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ailedger.core import errors
from ailedger.core.address import address_of
from ailedger.core.encoding import AMOUNT, B32, MAX_AMOUNT, U8, U16, U64, Text, VarBytes
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import tagged
from ailedger.core.keys import verify

if TYPE_CHECKING:
    from ailedger.core.keys import KeyPair

VERSION = 1
MAX_CHAIN_ID = 32
MAX_PAYLOAD = 65_536
MAX_TX_BYTES = 1 + 4 + MAX_CHAIN_ID + 32 + 8 + 8 + 2 + 4 + MAX_PAYLOAD + 64
SIGN_TAG = b"ailedger/tx/v1"

_LEN = struct.Struct(">I")
_FIXED = struct.Struct(">32sQQH")
_TAIL_CODECS = (U8, Text(MAX_CHAIN_ID), B32, U64, AMOUNT, U16, VarBytes(MAX_PAYLOAD))


@dataclass(frozen=True)
class Tx:
    chain_id: str
    sender: bytes
    nonce: int
    fee: int
    type: int
    payload: bytes
    signature: bytes
    raw: bytes
    body: bytes
    id: bytes  # tagged hash of `body`: names the action independently of the signature
    sender_address: bytes  # 20-byte account of `sender`; both are needed for every tx, so computed once

    def signature_ok(self) -> bool:
        return verify(self.sender, SIGN_TAG + self.body, self.signature)


def encode_body(chain_id: str, sender: bytes, nonce: int, fee: int, tx_type: int, payload: bytes) -> bytes:
    out = bytearray()
    for codec, value in zip(_TAIL_CODECS, (VERSION, chain_id, sender, nonce, fee, tx_type, payload), strict=True):
        codec.write(value, out)  # type: ignore[attr-defined]
    return bytes(out)


def sign_tx(key: KeyPair, chain_id: str, nonce: int, fee: int, tx_type: int, payload: bytes) -> bytes:
    """Build and sign a transaction; returns its wire bytes."""
    body = encode_body(chain_id, key.public_key, nonce, fee, tx_type, payload)
    return body + key.sign(SIGN_TAG + body)


def decode_tx(raw: bytes) -> Tx:
    """Parse wire bytes strictly: any truncation, excess, or out-of-range field is a specific error."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise LedgerError(errors.BAD_ENCODING, "a transaction is bytes")
    raw = bytes(raw)
    n = len(raw)
    if n > MAX_TX_BYTES:
        raise LedgerError(errors.OVERSIZED, f"transaction of {n} bytes exceeds {MAX_TX_BYTES}")
    if n < 5:
        raise LedgerError(errors.TRUNCATED, "shorter than a transaction header")
    if raw[0] != VERSION:
        raise LedgerError(errors.BAD_ENCODING, f"unknown transaction version {raw[0]}")
    (clen,) = _LEN.unpack_from(raw, 1)
    if clen > MAX_CHAIN_ID:
        raise LedgerError(errors.OVERSIZED, f"chain id of {clen} bytes exceeds {MAX_CHAIN_ID}")
    pos = 5 + clen
    if n < pos + 54:
        raise LedgerError(errors.TRUNCATED, "transaction ends inside its fixed fields")
    try:
        chain_id = raw[5:pos].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LedgerError(errors.BAD_ENCODING, "chain id is not UTF-8") from exc
    sender, nonce, fee, tx_type = _FIXED.unpack_from(raw, pos)
    if fee > MAX_AMOUNT:
        raise LedgerError(errors.INT_RANGE, f"fee {fee} exceeds 2^63-1")
    pos += 50
    (plen,) = _LEN.unpack_from(raw, pos)
    if plen > MAX_PAYLOAD:
        raise LedgerError(errors.OVERSIZED, f"payload of {plen} bytes exceeds {MAX_PAYLOAD}")
    pos += 4
    end = pos + plen
    if n < end + 64:
        raise LedgerError(errors.TRUNCATED, "transaction ends before its signature")
    if n > end + 64:
        raise LedgerError(errors.TRAILING_BYTES, f"{n - end - 64} byte(s) after the signature")
    body = raw[:end]
    return Tx(chain_id, sender, nonce, fee, tx_type, raw[pos:end], raw[end:], raw, body, tagged(b"tx", body),
              address_of(sender))
