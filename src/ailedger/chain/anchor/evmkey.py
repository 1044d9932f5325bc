"""The anchorer's EVM key: a secp256k1 private key read from a file or an environment variable.

Why not the ledger keystore: ledger keys are Ed25519, EVM accounts are secp256k1; the anchorer is an
EVM account that pays gas. A file (mode 0600, first line the hex key) suits a server; the variable
suits CI and anvil's well-known development keys. The key is never printed, only its address.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ailedger.core import errors
from ailedger.core.errors import LedgerError

KEY_ENV = "AILEDGER_ANCHOR_KEY"
_HEX_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class EvmKey:
    private_key: bytes
    address: str  # checksummed 0x address

    def __repr__(self) -> str:  # never show the key in a traceback or a log
        return f"EvmKey({self.address})"


def parse_key(text: str) -> EvmKey:
    text = text.strip()
    if not _HEX_KEY.fullmatch(text):
        raise LedgerError(errors.ANCHOR_BAD_KEY, "not 64 hex digits")
    from eth_account import Account  # lazy: web3's stack costs a second to import

    raw = bytes.fromhex(text.removeprefix("0x"))
    try:
        address = Account.from_key(raw).address
    except (ValueError, TypeError) as exc:  # zero, or beyond the curve order
        raise LedgerError(errors.ANCHOR_BAD_KEY, "not a valid secp256k1 private key") from exc
    return EvmKey(raw, str(address))


def load_key(key_file: Path | None) -> EvmKey:
    """--key-file if given, else $AILEDGER_ANCHOR_KEY."""
    if key_file is not None:
        try:
            lines = key_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise LedgerError(errors.FILE_UNREADABLE, f"{key_file}: {exc.__class__.__name__}: {exc}") from exc
        return parse_key(lines[0] if lines else "")
    env = os.environ.get(KEY_ENV)
    if not env:
        raise LedgerError(errors.ANCHOR_BAD_KEY, f"give --key-file or set {KEY_ENV}")
    return parse_key(env)
