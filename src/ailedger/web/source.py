"""What the explorer reads a chain through: a local `Node`, or a node elsewhere over its HTTP API.

Why a protocol rather than the `Node` class: `ailedger explorer --node URL` shows a chain it does not
hold. `RemoteNode` answers the same few questions over `/v1`, and its state is the history index's
own replay of the node's blocks (checked root by root against their headers while replaying), so the
pages read keyed state locally either way, and what they show is what the blocks imply.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

import httpx

from ailedger.chain.block import Block, BlockHeader
from ailedger.chain.genesis import Genesis
from ailedger.chain.receipt import Receipt
from ailedger.chain.runtime import Runtime
from ailedger.chain.state import State
from ailedger.core import errors
from ailedger.core.errors import LedgerError, by_name
from ailedger.core.hashing import canonical_json
from ailedger.web.history import History


class BlockSource(Protocol):
    """The block store's reads the explorer needs (`chain.store.Store` has them)."""

    @property
    def genesis(self) -> Genesis: ...
    def height(self) -> int: ...
    def block(self, height: int) -> Block: ...
    def header(self, height: int) -> BlockHeader: ...
    def block_txs(self, height: int, start: int, limit: int) -> list[tuple[int, bytes, Receipt]]: ...
    def find_tx(self, tx_id: bytes) -> tuple[int, int, bytes, Receipt] | None: ...
    def block_height(self, block_hash: bytes) -> int: ...


class NodeReads(Protocol):
    """The node's reads the explorer needs (`chain.node.Node` has them)."""

    @property
    def store(self) -> BlockSource: ...
    @property
    def runtime(self) -> Runtime: ...
    @property
    def chain_id(self) -> str: ...
    @property
    def lock(self) -> AbstractContextManager[Any]: ...
    @property
    def state(self) -> State: ...
    def status(self) -> dict[str, Any]: ...
    def account(self, address: str, proof: bool = False) -> dict[str, Any]: ...
    def tx(self, tx_id_hex: str, proof: bool = False) -> dict[str, Any]: ...
    def get_blob(self, hash_hex: str) -> bytes: ...


class Api:
    """GETs against a node's `/v1`; its error bodies come back as the same LedgerError."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout_s)

    def get(self, path: str) -> httpx.Response:
        try:
            resp = self.http.get(path)
        except httpx.HTTPError as exc:
            raise LedgerError(errors.NODE_UNREACHABLE, f"{self.url}: {type(exc).__name__}") from exc
        if resp.status_code != 200:
            try:
                err = resp.json()["error"]
                code = by_name(str(err["code"]))
            except (ValueError, KeyError, TypeError):
                raise LedgerError(errors.NODE_UNREACHABLE, f"{self.url}{path}: HTTP {resp.status_code}") from None
            raise LedgerError(code, err.get("detail"))
        return resp

    def json(self, path: str) -> Any:
        return self.get(path).json()


def header_from_json(h: dict[str, Any]) -> BlockHeader:
    return BlockHeader(int(h["version"]), str(h["chain_id"]), int(h["height"]), bytes.fromhex(h["parent"]),
                       int(h["timestamp_ms"]), bytes.fromhex(h["proposer"]), int(h["tx_count"]),
                       bytes.fromhex(h["tx_root"]), bytes.fromhex(h["receipts_root"]), bytes.fromhex(h["state_root"]))


def receipt_from_json(r: dict[str, Any]) -> Receipt:
    return Receipt(bytes.fromhex(r["tx_id"]), int(r["code"]), int(r["fee"]))


class RemoteStore:
    """A node's blocks over HTTP, shaped like the store (a block is fetched whole, and the last few kept)."""

    HEIGHT_TTL_S = 0.5  # the head is asked at most this often (every history read checks it)

    def __init__(self, api: Api, block_height: Callable[[bytes], int]) -> None:
        self.api = api
        status = api.json("/v1/status")
        self._genesis = Genesis.parse(canonical_json(status["genesis"]))
        self._height, self._asked = int(status["height"]), time.monotonic()
        self._blocks: dict[int, dict[str, Any]] = {}
        self._by_hash = block_height
        self._lock = threading.Lock()

    @property
    def genesis(self) -> Genesis:
        return self._genesis

    def height(self) -> int:
        with self._lock:
            if time.monotonic() - self._asked > self.HEIGHT_TTL_S:
                self._height, self._asked = int(self.api.json("/v1/status")["height"]), time.monotonic()
            return self._height

    def _doc(self, height: int) -> dict[str, Any]:
        with self._lock:
            doc = self._blocks.get(height)
        if doc is None:
            doc = self.api.json(f"/v1/blocks/{height}")
            with self._lock:
                if len(self._blocks) >= 64:
                    self._blocks.pop(next(iter(self._blocks)))
                self._blocks[height] = doc
        return doc

    def block(self, height: int) -> Block:
        doc = self._doc(height)
        return Block(header_from_json(doc["header"]), bytes.fromhex(doc["signature"]),
                     [bytes.fromhex(t["raw"]) for t in doc["txs"]])

    def header(self, height: int) -> BlockHeader:
        return header_from_json(self._doc(height)["header"])

    def block_txs(self, height: int, start: int, limit: int) -> list[tuple[int, bytes, Receipt]]:
        txs = self._doc(height)["txs"][start:start + limit]
        return [(int(t["position"]), bytes.fromhex(t["raw"]), receipt_from_json(t["receipt"])) for t in txs]

    def find_tx(self, tx_id: bytes) -> tuple[int, int, bytes, Receipt] | None:
        try:
            doc = self.api.json(f"/v1/txs/{tx_id.hex()}")
        except LedgerError as exc:
            if exc.code is errors.NOT_FOUND:
                return None
            raise
        if doc.get("status") != "included":
            return None
        return int(doc["height"]), int(doc["position"]), bytes.fromhex(doc["raw"]), receipt_from_json(doc["receipt"])

    def block_height(self, block_hash: bytes) -> int:
        return self._by_hash(block_hash)


class RemoteNode:
    """A node at `url`, read over HTTP. Its state is its history index's replay of the node's blocks, and
    its lock is the index's, so a page never reads the state while a new block is being replayed into it."""

    def __init__(self, url: str, runtime: Runtime) -> None:
        self.api = Api(url)
        self._store = RemoteStore(self.api, lambda h: self.history.block_height(h))
        self._runtime = runtime
        self.history = History(self._store, runtime)

    @property
    def store(self) -> RemoteStore:
        return self._store

    @property
    def runtime(self) -> Runtime:
        return self._runtime

    @property
    def chain_id(self) -> str:
        return self._store.genesis.chain_id

    @property
    def lock(self) -> AbstractContextManager[Any]:
        return self.history.lock

    @property
    def state(self) -> State:
        self.history.catch_up()
        return self.history.state()

    def status(self) -> dict[str, Any]:
        return dict(self.api.json("/v1/status"))

    def account(self, address: str, proof: bool = False) -> dict[str, Any]:
        return dict(self.api.json(f"/v1/accounts/{address}" + ("?proof=true" if proof else "")))

    def tx(self, tx_id_hex: str, proof: bool = False) -> dict[str, Any]:
        return dict(self.api.json(f"/v1/txs/{tx_id_hex}" + ("?proof=true" if proof else "")))

    def block_json(self, height: int) -> dict[str, Any]:
        return dict(self.api.json(f"/v1/blocks/{height}"))

    def get_blob(self, hash_hex: str) -> bytes:
        return self.api.get(f"/v1/blobs/{hash_hex}").content

    def close(self) -> None:
        self.api.http.close()
