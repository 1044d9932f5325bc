"""The playground's relay: one streamed chat completion from a serving server, passed through.

Why the explorer relays instead of the browser calling the serving server: that server is another
origin, and its OpenAI-compatible API sends no CORS headers, so a page could not read its stream.
The relay adds one event first, `{"receipt_id": ...}` from the server's `x-ailedger-receipt-id`
header, so the page can link to the answer's page once the receipt is on the ledger. The API key
goes to the serving server only; the explorer neither logs nor keeps it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ailedger.core import errors
from ailedger.core.errors import LedgerError

TIMEOUT_S = 120.0


def _event(doc: object) -> bytes:
    return f"data: {json.dumps(doc)}\n\n".encode()


def check_server(server: str) -> str:
    parts = urlsplit(server.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LedgerError(errors.BAD_REQUEST,
                          f"the serving server's URL must be http(s)://HOST:PORT, not {server[:80]!r}")
    return server.strip().rstrip("/")


class Ask(BaseModel):
    """The playground form, as the page posts it (JSON)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    server: str = Field(max_length=500)
    key: str = Field(max_length=500)
    model: str = Field(max_length=200)
    prompt: str = Field(min_length=1, max_length=4000)
    max_tokens: int = Field(default=64, ge=1, le=512)


def relay(ask: Ask) -> Iterator[bytes]:
    """Server-sent events: the receipt id, then the server's own chunks (errors as one `error` event)."""
    server, key, model, prompt, max_tokens = ask.server, ask.key, ask.model, ask.prompt, ask.max_tokens
    try:
        url = check_server(server) + "/v1/chat/completions"
    except LedgerError as exc:
        yield _event({"error": exc.to_json()})
        return
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True,
            "max_tokens": max_tokens}
    try:
        with httpx.stream("POST", url, json=body, headers={"Authorization": f"Bearer {key}"},
                          timeout=TIMEOUT_S) as resp:
            if resp.status_code != 200:
                resp.read()
                try:
                    detail = resp.json()
                except ValueError:
                    detail = {"error": {"message": resp.text[:300]}}
                yield _event(detail if isinstance(detail, dict) else {"error": {"message": str(detail)[:300]}})
                return
            yield _event({"receipt_id": resp.headers.get("x-ailedger-receipt-id")})
            yield from resp.iter_bytes()
    except httpx.HTTPError as exc:
        err = LedgerError(errors.NODE_UNREACHABLE, f"{server[:80]}: {type(exc).__name__}")
        yield _event({"error": err.to_json()})
