"""Ed25519 keys and signatures (libsodium through PyNaCl).

libsodium's verification is strict (canonical S, no small-order keys), so a valid signature cannot
be mutated into a second valid one: transaction ids can safely be hashes of the signed bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.bindings as _sodium
import nacl.exceptions

from ailedger.core.address import address_of, encode_address

_open = _sodium.crypto_sign_open
_BadSig = nacl.exceptions.BadSignatureError


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is `public_key`'s signature of `message`."""
    try:
        _open(signature + message, public_key)
    except (_BadSig, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class KeyPair:
    seed: bytes
    public_key: bytes
    _secret: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        pk, sk = _sodium.crypto_sign_seed_keypair(seed)
        return cls(seed, pk, sk)

    @classmethod
    def generate(cls) -> KeyPair:
        import os

        return cls.from_seed(os.urandom(32))

    def sign(self, message: bytes) -> bytes:
        return bytes(_sodium.crypto_sign(message, self._secret)[:64])

    @property
    def address(self) -> bytes:
        return address_of(self.public_key)

    @property
    def address_text(self) -> str:
        return encode_address(self.address)

    def __repr__(self) -> str:
        return f"KeyPair({self.address_text})"
