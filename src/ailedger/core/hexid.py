"""32-byte ids typed by people (record hashes, job ids): exactly 64 hex digits, in either case."""

from __future__ import annotations

from ailedger.core.errors import ErrorCode, LedgerError


def parse_hex32(text: str, code: ErrorCode) -> bytes:
    """The 32 bytes `text` spells, or `code` naming what was given (shortened when long)."""
    try:
        raw = bytes.fromhex(text)
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 32 or len(text) != 64:
        shown = text if len(text) <= 80 else text[:80] + "…"
        raise LedgerError(code, repr(shown))
    return raw
