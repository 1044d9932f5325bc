"""API keys: made off the ledger, known to the ledger only by their tagged hash.

A key is `alk_` followed by the unpadded URL-safe base64 of 32 random bytes (43 characters). It is
shown once when made and never stored by ailedger; the ledger, the node and the serving provider
only see `api_key_hash(key)`, so a leaked ledger or server log never leaks a usable key.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import tagged
from ailedger.core.hexid import parse_hex32

PREFIX = "alk_"
HASH_TAG = b"ailedger/api-key"
_KEY = re.compile(r"alk_[A-Za-z0-9_-]{43}", re.ASCII)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_api_key() -> str:
    """A fresh key from the OS's secure random source."""
    return PREFIX + _b64(secrets.token_bytes(32))


def parse_api_key(text: str) -> str:
    """The key `text` spells (surrounding white space dropped), else bad_api_key; the key is never echoed."""
    key = text.strip() if isinstance(text, str) else ""
    if _KEY.fullmatch(key) is None:
        raise LedgerError(errors.BAD_API_KEY, f"got {len(key)} characters" + (
            "" if key.startswith(PREFIX) else f", not starting with {PREFIX!r}"))
    try:
        raw = base64.urlsafe_b64decode(key[len(PREFIX):] + "=")
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32 or _b64(raw) != key[len(PREFIX):]:  # the last character must be canonical
        raise LedgerError(errors.BAD_API_KEY, "its characters do not spell 32 bytes")
    return key


def api_key_hash(key: str) -> bytes:
    """tagged("ailedger/api-key", key as UTF-8): what authorize_key and receipts carry."""
    return tagged(HASH_TAG, parse_api_key(key).encode())


def key_hash_of(text: str) -> bytes:
    """An API key (`alk_…`) or a key hash (64 hex digits) given by a person: the key hash."""
    if isinstance(text, str) and text.strip().startswith(PREFIX):
        return api_key_hash(text)
    return parse_hex32(text, errors.BAD_KEY_HASH)
