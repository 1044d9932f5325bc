"""REST routes over one `Node`: the same JSON views the embedded node returns, and the same errors.

Why every failure has one shape: a client (ours in `api.client`, or curl) turns any non-2xx answer
back into a `LedgerError` by reading `{"error": {"code", "number", "message", "detail"}}`, so
the CLI prints the same code and sentence whether it talks to a local data directory or to a node.
Handlers are plain functions: FastAPI runs them on its thread pool, and the node's lock makes
them safe next to the block producer.

Two guards sit in front of the routes as raw ASGI middleware: a bound on the request body (read
and counted before any parsing, since a client may omit Content-Length), and a last-resort handler
that logs an unexpected exception and answers `internal_error` without leaking a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import ailedger
from ailedger.api.agents import add_agents_routes
from ailedger.api.billing import add_billing_routes
from ailedger.api.datanets import add_datanet_routes
from ailedger.api.governance import add_governance_routes
from ailedger.api.market import add_market_routes
from ailedger.api.models import add_model_routes
from ailedger.api.replication import add_replication_routes
from ailedger.api.settlement import add_settlement_routes
from ailedger.chain.node import Node
from ailedger.core import errors
from ailedger.core.encoding import MAX_AMOUNT
from ailedger.core.errors import LedgerError

MAX_BODY_BYTES = 1 << 20
MAX_BATCH = 10_000
_DRAIN_LIMIT = 8 << 20  # read (and drop) this much of an oversized body so the client sees our answer

_log = logging.getLogger("ailedger.api")


# -- error bodies ---------------------------------------------------------------------------------

def error_response(exc: LedgerError, status: int | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": exc.to_json()}, status_code=status or exc.code.http_status, headers=headers)


def _raw_error(exc: LedgerError, status: int | None = None) -> tuple[int, bytes]:
    return status or exc.code.http_status, json.dumps({"error": exc.to_json()}).encode()


async def _send_raw(send: Send, status: int, body: bytes, close: bool = False) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)[:500]


# -- guards ---------------------------------------------------------------------------------------

class BodyLimit:
    """Refuse request bodies over `limit` bytes with oversized_encoding (HTTP 413), before parsing."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) <= self.limit:
            await self.app(scope, receive, send)  # the server enforces the declared length
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await self._refuse(receive, send, size, message.get("more_body", False))
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, receive: Receive, send: Send, size: int, more: bool) -> None:
        while more and size <= _DRAIN_LIMIT:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        exc = LedgerError(errors.OVERSIZED, f"request body exceeds {self.limit} bytes")
        status, body = _raw_error(exc, 413)
        await _send_raw(send, status, body, close=True)


class CatchAll:
    """Turn any exception that escaped the routes into a logged 500 internal_error answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            _log.exception("unexpected error serving %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            status, body = _raw_error(LedgerError(errors.INTERNAL, type(exc).__name__))
            await _send_raw(send, status, body)


class CatchUp:
    """Before each request, take in what other processes sharing the node's server store wrote.

    Only for a shared store (`node run --workers N` on PostgreSQL): a client that submits through
    one process and reads through another then sees its transaction. The catch-up runs in a thread,
    since it may wait on the database; a database that is down answers store_unavailable (503).
    """

    def __init__(self, app: ASGIApp, node: Node) -> None:
        self.app = app
        self.node = node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            import anyio.to_thread

            try:
                await anyio.to_thread.run_sync(self.node.sync)
            except LedgerError as exc:
                status, body = _raw_error(exc)
                await _send_raw(send, status, body)
                return
        await self.app(scope, receive, send)


# -- inputs ---------------------------------------------------------------------------------------

def parse_hex(text: str, what: str) -> bytes:
    """Strict hex: an even number of hex digits and nothing else (no spaces, no 0x)."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = None
    if raw is None or len(raw) * 2 != len(text):
        shown = text if len(text) <= 80 else text[:80] + "…"
        raise LedgerError(errors.BAD_HEX, f"{what}: {shown!r}")
    return raw


class SubmitBody(BaseModel):
    """Either one transaction (`tx`) or a batch (`txs`), as hex of the wire bytes."""

    model_config = ConfigDict(extra="forbid", strict=True)
    tx: str | None = None
    txs: list[str] | None = None


class BlobsBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    blobs: list[str]


def _ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


# -- the app --------------------------------------------------------------------------------------

def create_app(node: Node, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """Routes under /v1 serving `node`; every error answers {"error": {...}} with its code's status."""
    app = FastAPI(title="ailedger node", version=ailedger.__version__, redoc_url=None)
    app.state.node = node

    @app.exception_handler(LedgerError)
    async def on_ledger_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LedgerError)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(LedgerError(errors.BAD_REQUEST, _validation_detail(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return error_response(LedgerError(errors.NOT_FOUND, f"no route {request.url.path}"))
        err = LedgerError(errors.BAD_REQUEST, f"{request.method} {request.url.path}: {exc.detail}")
        return error_response(err, exc.status_code, exc.headers)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return _ok({"ok": True})

    @app.get("/v1/status")
    def status() -> JSONResponse:
        return _ok(node.status())

    @app.get("/v1/params")
    def params() -> JSONResponse:
        return _ok(node.params())

    @app.get("/v1/params/{name}/history")
    def param_history(name: str, offset: int = 0, limit: int = 100) -> JSONResponse:
        """A parameter now, and each change governance made to it (height, old, new, proposal)."""
        return _ok(node.param_history(name, offset, limit))

    @app.post("/v1/txs")
    def submit(body: SubmitBody) -> JSONResponse:
        """One transaction answers 202 {"tx_id", "status"}; a batch answers 200 {"results": [...]},
        one result per item in order: {"tx_id", "status"} or {"error": {...}}."""
        if (body.tx is None) == (body.txs is None):
            raise LedgerError(errors.BAD_REQUEST, "send exactly one of 'tx' (one hex string) or 'txs' (a list)")
        if body.tx is not None:
            return _ok(node.submit(parse_hex(body.tx, "tx")), 202)
        assert body.txs is not None
        if len(body.txs) > MAX_BATCH:
            raise LedgerError(errors.BAD_REQUEST, f"a batch holds at most {MAX_BATCH} transactions")
        results: list[dict[str, Any]] = []
        for i, item in enumerate(body.txs):
            try:
                results.append(node.submit(parse_hex(item, f"txs[{i}]")))
            except LedgerError as exc:
                results.append({"error": exc.to_json()})
        return _ok({"results": results})

    @app.get("/v1/txs/{tx_id}")
    def get_tx(tx_id: str, proof: bool = False) -> JSONResponse:
        parse_hex(tx_id, "transaction id")
        return _ok(node.tx(tx_id.lower(), proof))

    @app.get("/v1/blocks/latest")
    def latest_block() -> JSONResponse:
        return _ok(node.block("latest"))

    @app.get("/v1/blocks/{height}")
    def get_block(height: Annotated[int, PathParam(ge=0, le=MAX_AMOUNT)]) -> JSONResponse:
        return _ok(node.block(height))

    @app.get("/v1/accounts/{address}")
    def get_account(address: str, proof: Annotated[bool, Query()] = False) -> JSONResponse:
        return _ok(node.account(address, proof))

    @app.post("/v1/blobs")
    def put_blobs(body: BlobsBody) -> JSONResponse:
        """Store content-addressed blobs (hex); answers their SHA-256 hashes in order."""
        if len(body.blobs) > MAX_BATCH:
            raise LedgerError(errors.BAD_REQUEST, f"a batch holds at most {MAX_BATCH} blobs")
        return _ok({"hashes": node.put_blobs([parse_hex(b, f"blobs[{i}]") for i, b in enumerate(body.blobs)])})

    @app.get("/v1/blobs/{blob_hash}")
    def get_blob(blob_hash: str) -> Response:
        parse_hex(blob_hash, "blob hash")
        return Response(node.get_blob(blob_hash.lower()), media_type="application/octet-stream")

    add_datanet_routes(app, node)
    add_model_routes(app, node)
    add_billing_routes(app, node)
    add_settlement_routes(app, node)
    add_governance_routes(app, node)
    add_market_routes(app, node)
    add_agents_routes(app, node)
    add_replication_routes(app, node)
    if node.store.shared:
        app.add_middleware(CatchUp, node=node)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_middleware(CatchAll)
    return app
