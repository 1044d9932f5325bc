"""How blocks travel from a primary to a replica: their wire bytes, and the HTTP client that fetches them.

Why a binary feed beside `/v1/blocks/{h}`: that JSON view decodes every payload for people to read,
which costs the primary more than the block itself, and a replica needs none of it. It needs exactly
what it re-executes: the header bytes, the proposer's signature and each transaction's raw bytes.
`GET /v1/chain/blocks?from=H&limit=K` answers those, encoded with the ledger's own codecs
(docs/replicas.md), and says the primary's head height in the `x-ailedger-height` header, so one
request both fetches blocks and tells the replica how far behind it is.

Nothing read from the primary is trusted: the client only parses. The follower re-executes every
block before it is stored or served.
"""

from __future__ import annotations

from typing import Any

import httpx

from ailedger.chain.block import HEADER, Block
from ailedger.chain.genesis import Genesis
from ailedger.chain.tx import MAX_TX_BYTES
from ailedger.core import errors
from ailedger.core.encoding import B64, ListOf, Record, VarBytes
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import canonical_json

FEED_PATH = "/v1/chain/blocks"
HEIGHT_HEADER = "x-ailedger-height"
MAX_FEED_BLOCKS = 256  # blocks in one answer at most
MAX_FEED_BYTES = 16 << 20  # an answer stops growing past this (it always holds at least one block)
MAX_BLOCK_TXS = 100_000  # the ceiling of the `max_block_txs` parameter

BLOCK_WIRE: Record[Block] = Record(Block, {
    "header": HEADER, "signature": B64, "txs": ListOf(VarBytes(MAX_TX_BYTES), MAX_BLOCK_TXS),
})
FEED_WIRE: ListOf[Block] = ListOf(BLOCK_WIRE, MAX_FEED_BLOCKS)


def encode_feed(blocks: list[Block]) -> bytes:
    return FEED_WIRE.encode(blocks)


def decode_feed(data: bytes) -> list[Block]:
    """Parse a feed answer strictly; any malformation is the primary's fault, so it is reported as such."""
    try:
        return FEED_WIRE.decode(data)
    except LedgerError as exc:
        raise LedgerError(errors.REPLICA_BAD_ANSWER, f"block feed: {exc.code.name} {exc.detail}") from exc


class PrimaryClient:
    """The few calls a replica makes to its primary. Transport failures become replica_primary_unreachable
    (worth retrying); an answer no ailedger node would give becomes replica_bad_answer (not worth it)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise LedgerError(errors.REPLICA_PRIMARY_UNREACHABLE, f"{self.url}: {type(exc).__name__} {exc}") from exc
        return resp

    def _json(self, resp: httpx.Response, path: str) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise LedgerError(errors.REPLICA_BAD_ANSWER, f"{self.url}{path}: not JSON "
                              f"(HTTP {resp.status_code})") from None

    def _raise_error_body(self, resp: httpx.Response, path: str) -> None:
        """Re-raise a node's error body as the same LedgerError. Without one, a 5xx is a proxy or a
        restart in between (unreachable, worth retrying) and anything else is not an ailedger node."""
        try:
            err = resp.json()["error"]
            code = errors.by_name(str(err["code"]))
            detail = str(err.get("detail", ""))
        except (ValueError, KeyError, TypeError):
            code = errors.REPLICA_PRIMARY_UNREACHABLE if resp.status_code >= 500 else errors.REPLICA_BAD_ANSWER
            raise LedgerError(code, f"{self.url}{path}: HTTP {resp.status_code} without an error body") from None
        raise LedgerError(code, detail)

    def status(self) -> tuple[dict[str, Any], Genesis]:
        """The primary's status document and its genesis, parsed and validated."""
        resp = self._send("GET", "/v1/status")
        if resp.status_code != 200:
            self._raise_error_body(resp, "/v1/status")
        doc = self._json(resp, "/v1/status")
        try:
            genesis = Genesis.parse(canonical_json(doc["genesis"]))
            if doc["chain_id"] != genesis.chain_id or type(doc["height"]) is not int:
                raise KeyError("chain_id")
        except (KeyError, TypeError) as exc:
            raise LedgerError(errors.REPLICA_BAD_ANSWER, f"{self.url}/v1/status: not a node's status") from exc
        except LedgerError as exc:
            raise LedgerError(errors.REPLICA_BAD_ANSWER, f"{self.url}/v1/status genesis: {exc.detail}") from exc
        return doc, genesis

    def blocks(self, start: int, limit: int) -> tuple[list[Block], int]:
        """Up to `limit` consecutive blocks from height `start`, and the primary's head height."""
        path = f"{FEED_PATH}?from={start}&limit={limit}"
        resp = self._send("GET", path)
        if resp.status_code != 200:
            self._raise_error_body(resp, path)
        try:
            head = int(resp.headers[HEIGHT_HEADER])
        except (KeyError, ValueError):
            raise LedgerError(errors.REPLICA_BAD_ANSWER, f"{self.url}{path}: no {HEIGHT_HEADER} header") from None
        blocks = decode_feed(resp.content)
        for i, block in enumerate(blocks):
            if block.header.height != start + i:
                raise LedgerError(errors.REPLICA_BAD_ANSWER, f"{self.url}{path}: block {i} of the answer has "
                                  f"height {block.header.height}, not {start + i}")
        return blocks, head

    def submit(self, raw: bytes) -> dict[str, Any]:
        """Forward one signed transaction; the primary's answer (or its error) comes back unchanged."""
        resp = self._send("POST", "/v1/txs", json={"tx": raw.hex()})
        if resp.status_code != 202:
            self._raise_error_body(resp, "/v1/txs")
        return dict(self._json(resp, "/v1/txs"))

    def tx(self, tx_id_hex: str) -> dict[str, Any]:
        resp = self._send("GET", f"/v1/txs/{tx_id_hex}")
        if resp.status_code != 200:
            self._raise_error_body(resp, f"/v1/txs/{tx_id_hex}")
        return dict(self._json(resp, f"/v1/txs/{tx_id_hex}"))

    def put_blobs(self, blobs: list[bytes]) -> list[str]:
        resp = self._send("POST", "/v1/blobs", json={"blobs": [b.hex() for b in blobs]})
        if resp.status_code != 200:
            self._raise_error_body(resp, "/v1/blobs")
        return [str(h) for h in self._json(resp, "/v1/blobs")["hashes"]]

    def get_blob(self, hash_hex: str) -> bytes:
        resp = self._send("GET", f"/v1/blobs/{hash_hex}")
        if resp.status_code != 200:
            self._raise_error_body(resp, f"/v1/blobs/{hash_hex}")
        return resp.content
