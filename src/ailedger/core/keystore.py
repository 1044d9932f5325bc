"""Passphrase-encrypted key files: an Ed25519 seed sealed with Argon2id and XSalsa20-Poly1305.

Why this layout (after Ethereum's keystore v3): the passphrase is stretched with Argon2id, a
memory-hard KDF, so guessing it costs real memory per guess. The derived key is split by domain
tags into an encryption key and a *check* value; the check is stored, so a wrong passphrase is
recognised before decryption and told apart from a damaged file. An unkeyed checksum over every
other field catches accidental damage (a flipped byte in the salt, the nonce, the check itself)
without the passphrase. SecretBox's Poly1305 tag then authenticates the ciphertext, and the
decrypted seed must reproduce the stored public key, so a tampered file can never unlock to a
different key.

Pure functions only: the caller reads and writes the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id as _argon2id
import nacl.secret
import nacl.utils

from ailedger.core import errors
from ailedger.core.address import address_of, decode_address, encode_address
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import tagged
from ailedger.core.keys import KeyPair

VERSION = 1
KDF = "argon2id"
SEED_BYTES = 32

# name -> (opslimit, memlimit bytes). "default" unlocks in about 0.1-0.3 s on one core and needs
# 128 MiB; "test" is libsodium's minimum, for test suites only (it offers no protection).
COSTS: dict[str, tuple[int, int]] = {
    "default": (3, 128 * 1024 * 1024),
    "test": (_argon2id.OPSLIMIT_MIN, _argon2id.MEMLIMIT_MIN),
}
DEFAULT_OPSLIMIT, DEFAULT_MEMLIMIT = COSTS["default"]
# A file may ask for more work than ours, within reason; beyond this it is treated as damaged
# rather than allowed to exhaust the machine that opens it.
MAX_OPSLIMIT = 64
MAX_MEMLIMIT = 4 * 1024 * 1024 * 1024

_FIELDS = ("version", "name", "address", "public_key", "kdf", "kdfparams", "cipher", "nonce", "ciphertext",
           "check", "checksum")


@dataclass(frozen=True)
class KeystoreInfo:
    """What a keystore reveals without its passphrase."""

    name: str
    address: str
    public_key: bytes
    kdf: str
    opslimit: int
    memlimit: int


def _corrupt(why: str) -> LedgerError:
    return LedgerError(errors.KEYSTORE_CORRUPT, why)


def _passphrase_bytes(passphrase: str) -> bytes:
    # NFC so that the same passphrase typed on different systems derives the same key.
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> tuple[bytes, bytes]:
    """(encryption key, passphrase check) from one Argon2id run, separated by domain tags."""
    master = _argon2id.kdf(32, _passphrase_bytes(passphrase), salt, opslimit=opslimit, memlimit=memlimit)
    return tagged(b"ailedger/keystore/encrypt", master), tagged(b"ailedger/keystore/check", master)


def doc_checksum(doc: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of every field but `checksum` itself (detects accidental damage)."""
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def encrypt_key(seed: bytes, passphrase: str, name: str, *, opslimit: int = DEFAULT_OPSLIMIT,
                memlimit: int = DEFAULT_MEMLIMIT) -> dict[str, Any]:
    """Seal a 32-byte Ed25519 seed under `passphrase`; returns the JSON-able keystore document."""
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        raise ValueError("an Ed25519 seed is 32 bytes")
    if not 1 <= opslimit <= MAX_OPSLIMIT or not _argon2id.MEMLIMIT_MIN <= memlimit <= MAX_MEMLIMIT:
        raise ValueError("Argon2id cost outside the accepted range")
    key = KeyPair.from_seed(seed)
    salt = nacl.utils.random(_argon2id.SALTBYTES)
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    enc_key, check = _derive(passphrase, salt, opslimit, memlimit)
    ciphertext = nacl.secret.SecretBox(enc_key).encrypt(seed, nonce).ciphertext
    doc: dict[str, Any] = {
        "version": VERSION,
        "name": name,
        "address": key.address_text,
        "public_key": key.public_key.hex(),
        "kdf": KDF,
        "kdfparams": {"opslimit": opslimit, "memlimit": memlimit, "salt": salt.hex()},
        "cipher": "xsalsa20-poly1305",
        "nonce": nonce.hex(),
        "ciphertext": bytes(ciphertext).hex(),
        "check": check.hex(),
    }
    doc["checksum"] = doc_checksum(doc)
    return doc


def _hex(doc: dict[str, Any], key: str, size: int) -> bytes:
    value = doc.get(key)
    if not isinstance(value, str):
        raise _corrupt(f"field {key!r} is missing or not text")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise _corrupt(f"field {key!r} is not hex") from None
    if len(raw) != size:
        raise _corrupt(f"field {key!r} is {len(raw)} bytes, expected {size}")
    return raw


def _int(doc: dict[str, Any], key: str, low: int, high: int) -> int:
    value = doc.get(key)
    if type(value) is not int or not low <= value <= high:
        raise _corrupt(f"field {key!r} is missing or outside {low}..{high}")
    return value


def _parsed(doc: Any) -> tuple[KeystoreInfo, dict[str, Any]]:
    """Validate the structure and checksum of a keystore document."""
    if not isinstance(doc, dict):
        raise _corrupt("a keystore is a JSON object")
    missing = [k for k in _FIELDS if k not in doc]
    if missing:
        raise _corrupt(f"missing field(s) {', '.join(missing)}")
    if set(doc) - set(_FIELDS):
        raise _corrupt(f"unexpected field(s) {', '.join(sorted(set(doc) - set(_FIELDS)))}")
    if not isinstance(doc["checksum"], str) or not hmac.compare_digest(doc["checksum"].encode(),
                                                                         doc_checksum(doc).encode()):
        raise _corrupt("checksum mismatch: the file was altered or damaged")
    if doc["version"] != VERSION or doc["kdf"] != KDF or doc["cipher"] != "xsalsa20-poly1305":
        raise _corrupt("unsupported version, kdf or cipher")
    if not isinstance(doc["name"], str) or not isinstance(doc["kdfparams"], dict):
        raise _corrupt("field 'name' or 'kdfparams' has the wrong type")
    params = doc["kdfparams"]
    opslimit = _int(params, "opslimit", 1, MAX_OPSLIMIT)
    memlimit = _int(params, "memlimit", _argon2id.MEMLIMIT_MIN, MAX_MEMLIMIT)
    public_key = _hex(doc, "public_key", 32)
    try:
        address_ok = decode_address(doc["address"]) == address_of(public_key)
    except LedgerError:
        address_ok = False
    if not address_ok:
        raise _corrupt("the address does not belong to the public key")
    return KeystoreInfo(doc["name"], encode_address(address_of(public_key)), public_key, KDF, opslimit,
                        memlimit), params


def keystore_info(doc: Any) -> KeystoreInfo:
    """The public part of a keystore (name, address, public key), checked for damage; no passphrase."""
    return _parsed(doc)[0]


def decrypt_key(doc: Any, passphrase: str) -> bytes:
    """The 32-byte seed sealed in `doc`; raises keystore_corrupt or wrong_passphrase."""
    info, params = _parsed(doc)
    salt = _hex(params, "salt", _argon2id.SALTBYTES)
    nonce = _hex(doc, "nonce", nacl.secret.SecretBox.NONCE_SIZE)
    ciphertext = _hex(doc, "ciphertext", SEED_BYTES + nacl.secret.SecretBox.MACBYTES)
    stored_check = _hex(doc, "check", 32)
    enc_key, check = _derive(passphrase, salt, info.opslimit, info.memlimit)
    if not hmac.compare_digest(check, stored_check):
        raise LedgerError(errors.WRONG_PASSPHRASE, f"key {info.name!r}")
    try:
        seed = bytes(nacl.secret.SecretBox(enc_key).decrypt(ciphertext, nonce))
    except nacl.exceptions.CryptoError:
        raise _corrupt("the ciphertext fails its authentication tag") from None
    if len(seed) != SEED_BYTES or KeyPair.from_seed(seed).public_key != info.public_key:
        raise _corrupt("the decrypted seed does not give the stored public key")
    return seed
