"""Parse text that must hold one JSON object, failing with the caller's error code.

Why one helper: key files, genesis files, record lines and schema blobs all arrive as "a JSON
object, or else": each caller names the code and where the text came from, so the user is told
exactly which file (and line) to fix.
"""

from __future__ import annotations

import json
from typing import Any

from ailedger.core.errors import ErrorCode, LedgerError


def parse_object(text: str | bytes, code: ErrorCode, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise LedgerError(code, f"{where}: not JSON ({exc.args[0] if exc.args else exc})") from None
    if not isinstance(doc, dict):
        raise LedgerError(code, f"{where}: must be a JSON object")
    return doc
