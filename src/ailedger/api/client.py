"""A client for a node's HTTP API with the same calls, answers and errors as the embedded `Node`.

Why mirror the node: the CLI and the tests write each command once and point it at a data
directory or at a URL. Error bodies come back as the very `LedgerError` the node raised (looked
up by code name), and a node that cannot be reached is `node_unreachable`, never an httpx error.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from ailedger.core import errors
from ailedger.core.errors import ErrorCode, LedgerError


def error_from_body(status: int, body: Any, url: str = "") -> LedgerError:
    """The `LedgerError` an error answer describes; unknown codes (a newer node) keep their name."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("code"), str):
        code = errors.NODE_UNREACHABLE if status in (502, 503, 504) else errors.INTERNAL
        return LedgerError(code, f"HTTP {status} from {url} without an error body")
    name = err["code"]
    try:
        code = errors.by_name(name)
    except KeyError:
        number = err.get("number")
        code = ErrorCode(number if isinstance(number, int) else errors.INTERNAL.number, name,
                         str(err.get("message", "")), status)
    detail = err.get("detail")
    return LedgerError(code, "" if detail is None else str(detail))


class HttpClient:
    """Talks to one node; use as a context manager or call `close()` to release the connection."""

    def __init__(self, base_url: str, timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        try:
            self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError) as exc:
            raise LedgerError(errors.NODE_UNREACHABLE, f"{base_url}: not a usable URL ({exc})") from exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _call(self, method: str, path: str, *, params: dict[str, str] | None = None,
              body: dict[str, Any] | None = None) -> Any:
        url = self.base_url + path
        try:
            r = self._http.request(method, path, params=params, json=body)
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise LedgerError(errors.NODE_UNREACHABLE, f"{url}: {type(exc).__name__} {exc}".rstrip()) from exc
        try:
            doc = r.json()
        except ValueError:
            doc = None
        if r.is_success and doc is not None:
            return doc
        raise error_from_body(r.status_code, doc, url)

    @staticmethod
    def _proof(proof: bool) -> dict[str, str] | None:
        return {"proof": "true"} if proof else None

    # -- the node's calls --------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "/healthz"))

    def status(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/status"))

    def params(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/params"))

    def param_history(self, name: str, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/params/{self._seg(name)}/history",
                               params={"offset": str(offset), "limit": str(limit)}))

    def submit(self, raw: bytes) -> dict[str, Any]:
        """Send one transaction; returns {"tx_id", "status": "pending"} once the node has it on disk."""
        return dict(self._call("POST", "/v1/txs", body={"tx": bytes(raw).hex()}))

    def submit_many(self, raws: Iterable[bytes]) -> list[dict[str, Any]]:
        """Send a batch in one request; one result per item, in order: the `submit` answer or {"error": {...}}."""
        items = [bytes(r).hex() for r in raws]
        if not items:
            return []
        return list(self._call("POST", "/v1/txs", body={"txs": items})["results"])

    def account(self, address: str, proof: bool = False) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/accounts/{quote(address, safe='')}", params=self._proof(proof)))

    def block(self, height: int | str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/blocks/{quote(str(height), safe='')}"))

    def tx(self, tx_id_hex: str, proof: bool = False) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/txs/{quote(tx_id_hex, safe='')}", params=self._proof(proof)))

    def put_blobs(self, blobs: list[bytes], max_request_bytes: int = 400_000) -> list[str]:
        """Upload blobs in requests under the node's body cap; returns their hashes (hex) in order."""
        hashes: list[str] = []
        chunk: list[str] = []
        size = 0
        for b in blobs:
            h = b.hex()
            if chunk and size + len(h) > max_request_bytes:
                hashes += self._call("POST", "/v1/blobs", body={"blobs": chunk})["hashes"]
                chunk, size = [], 0
            chunk.append(h)
            size += len(h) + 4
        if chunk:
            hashes += self._call("POST", "/v1/blobs", body={"blobs": chunk})["hashes"]
        return hashes

    def get_blob(self, hash_hex: str) -> bytes:
        """A blob's bytes, re-hashed here too: a node cannot hand out something else under a hash."""
        url = f"{self.base_url}/v1/blobs/{quote(hash_hex, safe='')}"
        try:
            r = self._http.get(f"/v1/blobs/{quote(hash_hex, safe='')}")
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise LedgerError(errors.NODE_UNREACHABLE, f"{url}: {type(exc).__name__} {exc}") from exc
        if not r.is_success:
            try:
                doc = r.json()
            except ValueError:
                doc = None
            raise error_from_body(r.status_code, doc, url)
        if hashlib.sha256(r.content).hexdigest() != hash_hex.lower():
            raise LedgerError(errors.BLOB_CORRUPT, f"{hash_hex}: the node answered bytes with another hash")
        return r.content

    # -- Datanets and reputation (datanet/service.py) ----------------------------------------------

    @staticmethod
    def _seg(text: str) -> str:
        return quote(str(text), safe="")

    def datanets(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/datanets"))

    def datanet(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/datanets/{self._seg(name)}"))

    def datanet_record(self, name: str, hash_hex: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/datanets/{self._seg(name)}/records/{self._seg(hash_hex)}"))

    def datanet_pending(self, name: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/datanets/{self._seg(name)}/pending",
                               params={"limit": str(limit), "offset": str(offset)}))

    def datanet_version(self, name: str, number: int, offset: int = 0, limit: int = 10_000) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/datanets/{self._seg(name)}/versions/{self._seg(str(number))}",
                               params={"offset": str(offset), "limit": str(limit)}))

    def datanet_version_contributors(self, name: str, version: int, offset: int = 0,
                                     limit: int = 10_000) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/datanets/{self._seg(name)}/versions/{self._seg(str(version))}"
                                      "/contributors", params={"offset": str(offset), "limit": str(limit)}))

    def datanet_hashes(self, name: str, status: str = "accepted", offset: int = 0,
                       limit: int = 10_000) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/datanets/{self._seg(name)}/hashes",
                               params={"status": status, "offset": str(offset), "limit": str(limit)}))

    def datanet_known(self, name: str, hashes_hex: list[str]) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/datanets/{self._seg(name)}/known", body={"hashes": list(hashes_hex)}))

    def reputation(self, address: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/reputation/{self._seg(address)}"))

    # -- the model registry and compute jobs (models/service.py, market/service.py) -----------------

    def ledger_models(self, include_retired: bool = True) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/ledger/models",
                               params={"include_retired": "true" if include_retired else "false"}))

    def ledger_model(self, ref: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/ledger/models/{self._seg(ref)}"))

    def ledger_bases(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/ledger/bases"))

    def ledger_base(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/ledger/bases/{self._seg(name)}"))

    def jobs(self, status: str | None = None) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/jobs", params={"status": status} if status is not None else None))

    def job(self, id_hex: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/jobs/{self._seg(id_hex)}"))

    # -- billing (billing/service.py) ----------------------------------------------------------------

    def billing_account(self, address: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/billing/accounts/{self._seg(address)}"))

    def billing_key(self, key_hash_hex: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/billing/keys/{self._seg(key_hash_hex)}"))

    def billing_receipt(self, id_hex: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/billing/receipts/{self._seg(id_hex)}"))

    def billing_receipts(self, key_hash_hex: str | None = None, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        query = {"offset": str(offset), "limit": str(limit)}
        if key_hash_hex is not None:
            query["key"] = key_hash_hex
        return dict(self._call("GET", "/v1/billing/receipts", params=query))

    def billing_escrow(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/billing/escrow"))

    # -- settlement (settlement/service.py) ----------------------------------------------------------

    def settlement_earnings(self, address: str, datanet: str | None = None, model: str | None = None,
                            from_height: int | None = None, to_height: int | None = None,
                            limit: int = 100) -> dict[str, Any]:
        query = {k: str(v) for k, v in {"datanet": datanet, "model": model, "from_height": from_height,
                                         "to_height": to_height, "limit": limit}.items() if v is not None}
        return dict(self._call("GET", f"/v1/settlement/earnings/{self._seg(address)}", params=query))

    def settlement_line(self, address: str, height: int, limit: int = 100) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/settlement/earnings/{self._seg(address)}/lines/{int(height)}",
                               params={"limit": str(limit)}))

    def settlement_totals(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/settlement/totals"))

    # -- governance (governance/service.py) ----------------------------------------------------------

    def gov_proposals(self, status: str | None = None, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        query = {k: str(v) for k, v in {"status": status, "offset": offset, "limit": limit}.items() if v is not None}
        return dict(self._call("GET", "/v1/gov/proposals", params=query))

    def gov_proposal(self, pid: int, voter: str | None = None) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/gov/proposals/{int(pid)}", params={"voter": voter} if voter else None))

    def gov_treasury(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/gov/treasury"))

    # -- agents and tasks (agents/service.py) ---------------------------------------------------------

    def agents(self, task_type: str | None = None, status: str | None = None) -> dict[str, Any]:
        query = {k: v for k, v in {"task_type": task_type, "status": status}.items() if v is not None}
        return dict(self._call("GET", "/v1/agents", params=query or None))

    def agent(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/agents/{self._seg(name)}"))

    def agents_registry(self, address: str | None = None) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/agents/registry", params={"address": address} if address else None))

    def tasks(self, status: str | None = None, agent: str | None = None, offset: int = 0,
              limit: int = 100) -> dict[str, Any]:
        query = {k: str(v) for k, v in {"status": status, "agent": agent, "offset": offset,
                                        "limit": limit}.items() if v is not None}
        return dict(self._call("GET", "/v1/tasks", params=query))

    def task(self, tid: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/tasks/{int(tid)}"))

    # -- the compute market (market/service.py market_json) ---------------------------------------------

    def market(self, view: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/market/{self._seg(view)}", params=query or None))

    def wait_for_tx(self, tx_id_hex: str, timeout_s: float = 30.0, poll_s: float = 0.05) -> dict[str, Any]:
        """Poll until the transaction is included; returns its view.

        A node that is briefly unreachable (restarting) is retried until the deadline; `not_found`
        is final, since a node keeps every transaction it acknowledged until it is included.
        """
        deadline = time.monotonic() + timeout_s
        last = "never answered"
        while True:
            try:
                view = self.tx(tx_id_hex)
                if view.get("status") == "included":
                    return view
                last = f"status {view.get('status')}"
            except LedgerError as exc:
                if exc.code is not errors.NODE_UNREACHABLE:
                    raise
                last = f"node_unreachable ({exc.detail})"
            left = deadline - time.monotonic()
            if left <= 0:
                raise LedgerError(errors.WAIT_TIMEOUT, f"{tx_id_hex} after {timeout_s:g} s: {last}")
            time.sleep(min(poll_s, left))
