"""Human-facing addresses: bech32m (BIP-350) with the prefix `al`, over 20 bytes of key hash.

Why bech32m: its checksum catches any single typo and most transpositions, so a mistyped address
is refused instead of silently sending funds nowhere.
"""

from __future__ import annotations

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import tagged

HRP = "al"
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32M_CONST = 0x2BC830A3
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= _GEN[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], frm: int, to: int, pad: bool) -> list[int] | None:
    acc = bits = 0
    out = []
    maxv = (1 << to) - 1
    for value in data:
        acc = (acc << frm) | value
        bits += frm
        while bits >= to:
            bits -= to
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to - bits)) & maxv)
    elif bits >= frm or ((acc << (to - bits)) & maxv):
        return None
    return out


def encode_address(raw: bytes) -> str:
    """20 raw bytes -> 'al1...' text."""
    if len(raw) != 20:
        raise LedgerError(errors.BAD_ADDRESS, "an address is 20 bytes")
    data = _convert_bits(raw, 8, 5, True)
    assert data is not None
    poly = _polymod([*_hrp_expand(HRP), *data, 0, 0, 0, 0, 0, 0]) ^ _BECH32M_CONST
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return HRP + "1" + "".join(_CHARSET[d] for d in data + checksum)


def decode_address(text: str) -> bytes:
    """'al1...' text -> 20 raw bytes; any typo, wrong prefix or mixed case is a bad_address error."""
    if not isinstance(text, str) or (text.lower() != text and text.upper() != text):
        raise LedgerError(errors.BAD_ADDRESS, "mixed case")
    s = text.lower()
    pos = s.rfind("1")
    if s[:pos] != HRP or len(s) != len(HRP) + 1 + 32 + 6:
        raise LedgerError(errors.BAD_ADDRESS, f"expected '{HRP}1' and 38 characters after it")
    try:
        data = [_CHARSET.index(c) for c in s[pos + 1:]]
    except ValueError as exc:
        raise LedgerError(errors.BAD_ADDRESS, "character outside the bech32 alphabet") from exc
    if _polymod(_hrp_expand(HRP) + data) != _BECH32M_CONST:
        raise LedgerError(errors.BAD_ADDRESS, "checksum mismatch (a typo?)")
    raw = _convert_bits(data[:-6], 5, 8, False)
    if raw is None or len(raw) != 20:
        raise LedgerError(errors.BAD_ADDRESS, "bad padding")
    return bytes(raw)


def address_of(public_key: bytes) -> bytes:
    """The 20-byte account id of an Ed25519 public key."""
    return tagged(b"ailedger/address", public_key)[:20]
