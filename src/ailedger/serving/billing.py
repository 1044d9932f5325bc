"""Who pays for a request: API keys bound to ledger accounts, prepaid balances, receipts sent in batches.

A caller authorizes an API key on the ledger (`billing authorize_key`: the key's hash, this
server's provider address, a spending cap); only the key's hash is ever on the ledger. Before a
request runs, `authenticate` looks the key up (a short-lived cache over the node's `billing_key` view),
and `hold` reserves the most the request can cost (its prompt plus `max_tokens` at the model's price) against
the caller's prepaid balance and the key's remaining allowance, less what this server has already
promised itself and not yet seen on the ledger. Not enough → 402 before any work is done.

When the request ends, `finish` turns the hold into a receipt for what was actually used (tokens,
the exact base and adapter hashes, the records retrieval cited) and queues it; one background
thread signs `submit_receipts` transactions with the provider's key, in batches, and waits for
each to be included. The ledger charges each receipt by its own rule (billing module); this side
computes the same fee only to admit and to tell the caller.

An answer of an adapter that this server attributes (attribution_worker.py) is queued unready: the
batcher holds its receipt until `attach` brings the record's digest and per-record shares (or says
there is none), and before it signs a batch it posts the batch's record bytes to the node's blob
store, so anyone can fetch a receipt's record by its `attribution` hash. A receipt never waits
forever: after `attribution_wait_s`, or when the server stops, it goes without attribution, and a
record the node refuses to store is dropped from its receipt (logged) rather than the receipt.

Why the sequence numbers: a receipt stops counting against a key once the ledger view fetched for
that key reflects it. A view fetched before the receipt's block would otherwise forget the receipt
and a caller could overspend by a block's worth; so each view remembers the counter value read
before it was fetched, and a receipt included at a later counter value keeps counting until the
next fetch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ailedger.billing.keys import api_key_hash, parse_api_key
from ailedger.billing.payloads import SUBMIT_RECEIPTS, SUBMIT_RECEIPTS_CODEC, Receipt, ReceiptShare, SubmitReceipts
from ailedger.billing.rules import receipt_fee
from ailedger.billing.txs import check_attribution
from ailedger.chain.tx import decode_tx, sign_tx
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.serving.attribution_hook import Attributed
from ailedger.serving.catalog import Resolved
from ailedger.serving.openai_params import ApiError

_log = logging.getLogger("ailedger.serving.billing")
NO_HASH = bytes(32)
TRANSIENT = frozenset({errors.NODE_UNREACHABLE, errors.WAIT_TIMEOUT, errors.MEMPOOL_FULL})
EARLIER = ""  # settled by a transaction sent before (found on the ledger), not by a new one
CLOSING_RETRIES = 5  # while shutting down, give up on an unreachable node after this many tries
ATTRIBUTION_WAIT_S = 300.0  # longest a receipt waits for its answer's attribution before it goes without


class BillingBackend(Protocol):
    """The node calls billing needs (the HTTP client and the embedded backend both have them)."""

    def status(self) -> dict[str, Any]: ...
    def account(self, address: str, proof: bool = False) -> dict[str, Any]: ...
    def params(self) -> dict[str, Any]: ...
    def submit(self, raw: bytes) -> dict[str, Any]: ...
    def put_blobs(self, blobs: list[bytes]) -> list[str]: ...
    def wait_for_tx(self, tx_id_hex: str, timeout_s: float) -> dict[str, Any]: ...
    def billing_key(self, key_hash_hex: str) -> dict[str, Any]: ...
    def billing_receipt(self, id_hex: str) -> dict[str, Any]: ...


@dataclass
class Hold:
    """The most one admitted request may cost, held against its key until it ends."""

    key_hash: bytes
    price_per_1k: int
    amount: int
    resolved: Resolved
    open: bool = True


@dataclass
class _View:
    """The ledger's answer for one key, as of one fetch."""

    provider: str
    remaining: int  # allowance - spent
    available: int  # the account's prepaid + withdrawing
    expires: int
    revoked: bool
    height: int
    seq: int  # the inclusion counter read before the fetch
    fetched_at: float


@dataclass
class _Pending:
    receipt: Receipt
    fee: int
    included_seq: int | None = None
    ready: bool = True  # False while the answer's attribution is being computed
    ready_by: float = 0.0  # when an unready receipt stops waiting for its attribution
    blob: bytes | None = None  # the attribution record's bytes, posted to the node before the receipt


@dataclass
class BillingStats:
    receipts: int = 0  # queued
    included: int = 0  # in a block
    failed: int = 0  # in a refused or failed transaction (logged)
    txs: int = 0


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, f"{message}; {errors.INVALID_API_KEY.message}", code=errors.INVALID_API_KEY.name)


class LedgerBilling:
    """Admission against the ledger's keys and balances, and the receipt batcher (start it, close it)."""

    def __init__(self, backend: BillingBackend, provider: KeyPair, *, batch_size: int | None = None,
                 flush_s: float = 0.5, key_ttl_s: float = 2.0, tx_timeout_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, attribution_wait_s: float = ATTRIBUTION_WAIT_S) -> None:
        self.backend = backend
        self.provider = provider
        self.flush_s, self.key_ttl_s, self.tx_timeout_s, self.clock = flush_s, key_ttl_s, tx_timeout_s, clock
        self.attribution_wait_s = attribution_wait_s
        params = {name: int(v["value"]) for name, v in backend.params().items()}
        self.base_price_per_1k = params["billing_base_price_per_1k"]
        self.max_citations = params["billing_max_citations"]
        self.batch_size = min(batch_size or params["billing_max_receipts_per_tx"],
                              params["billing_max_receipts_per_tx"])
        self.fee = params["min_fee"]
        self.chain_id = str(backend.status()["chain_id"])
        self.stats = BillingStats()
        self._lock = threading.Condition()
        self._views: dict[bytes, _View] = {}
        self._holds: dict[bytes, list[Hold]] = {}
        self._pending: dict[bytes, list[_Pending]] = {}  # by key hash, until a fresh view reflects them
        self._queue: list[_Pending] = []
        self._awaiting: dict[bytes, _Pending] = {}  # by receipt id: queued, waiting for `attach`
        self._seq = 0
        self._closing = False
        self._thread: threading.Thread | None = None
        self._retry: tuple[list[_Pending], bytes | None] | None = None  # a batch whose submission may have landed

    # -- admission (request threads) -----------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> bytes:
        """The hash of a live key this server may charge (401 otherwise); called before any work is done."""
        key_hash = self._key_hash(authorization)
        view = self._view(key_hash)
        if view.revoked:
            raise _unauthorized("this API key was revoked by its account")
        if view.provider != self.provider.address_text:
            raise _unauthorized("this API key is authorized for another provider, not this server")
        if view.expires and view.height >= view.expires:
            raise _unauthorized(f"this API key expired at height {view.expires}")
        return key_hash

    def hold(self, key_hash: bytes, resolved: Resolved, prompt_tokens: int, max_tokens: int) -> Hold:
        """Hold the most this request can cost against the key, or refuse it with 402."""
        view = self._view(key_hash)
        price = self.price_of(resolved)
        hold = Hold(key_hash, price, receipt_fee(prompt_tokens + max_tokens, price), resolved)
        with self._lock:
            owed = self._owed(key_hash, view)
            room = min(view.available, view.remaining) - owed
            if hold.amount > room:
                raise ApiError(402, f"this request may cost up to {hold.amount} micro-units "
                                    f"({prompt_tokens} prompt + {max_tokens} max tokens at {price} per 1,000) but "
                                    f"the key has {max(room, 0)} left (prepaid {view.available}, allowance left "
                                    f"{view.remaining}, {owed} owed to this server); "
                                    f"{errors.INSUFFICIENT_QUOTA.message}", code=errors.INSUFFICIENT_QUOTA.name)
            self._holds.setdefault(key_hash, []).append(hold)
        return hold

    def price_of(self, resolved: Resolved) -> int:
        if resolved.adapter is None:
            return self.base_price_per_1k
        return int(resolved.adapter.provenance.get("price_per_1k_tokens", 0))

    def release(self, hold: Hold) -> None:
        """Drop a hold whose request never ran (refused after admission)."""
        with self._lock:
            self._drop_hold(hold)

    def finish(self, hold: Hold, receipt_id: str, prompt_tokens: int, completion_tokens: int,
               citations: tuple[str, ...] = (), attribution: bool = False) -> int:
        """Turn the hold into a receipt for what was used and queue it; returns the fee it claims.

        With `attribution`, the receipt waits in the queue for `attach` (its answer is being attributed).
        """
        adapter = hold.resolved.adapter
        receipt = Receipt(
            id=bytes.fromhex(receipt_id), key_hash=hold.key_hash,
            model=adapter.name if adapter else hold.resolved.base.name, version=adapter.version if adapter else 0,
            base_hash=bytes.fromhex(hold.resolved.base.weights_hash),
            adapter_hash=bytes.fromhex(adapter.adapter_hash) if adapter else NO_HASH,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            citations=[bytes.fromhex(c) for c in citations[:self.max_citations]])
        pending = _Pending(receipt, receipt_fee(prompt_tokens + completion_tokens, hold.price_per_1k),
                           ready=not attribution, ready_by=self.clock() + self.attribution_wait_s)
        with self._lock:
            self._drop_hold(hold)
            if attribution:
                self._awaiting[receipt.id] = pending
            self._pending.setdefault(hold.key_hash, []).append(pending)
            self._queue.append(pending)
            self.stats.receipts += 1
            self._lock.notify_all()
        return pending.fee

    def attach(self, receipt_id: str, found: Attributed | None) -> None:
        """Give a waiting receipt its answer's attribution (None: it has none) and let it go."""
        with self._lock:
            pending = self._awaiting.pop(bytes.fromhex(receipt_id), None)
            if pending is None:
                return  # it stopped waiting already (timed out, or the server is stopping)
            if found is not None:
                receipt = replace(pending.receipt, attribution=found.digest,
                                  shares=[ReceiptShare(who, bp) for who, bp in found.shares])
                try:
                    check_attribution(0, receipt)
                except LedgerError as exc:  # the ledger would refuse the whole batch for it
                    _log.error("receipt %s goes without attribution: %s", receipt_id, exc)
                else:
                    pending.receipt, pending.blob = receipt, found.body
            pending.ready = True
            self._lock.notify_all()

    def _ripen(self, everything: bool = False) -> None:
        """Let receipts go that waited for their attribution too long (all of them: `everything`), under the lock."""
        now = self.clock()
        for rid, pending in list(self._awaiting.items()):
            if everything or now >= pending.ready_by:
                _log.warning("receipt %s goes without attribution: none arrived in time", rid.hex())
                pending.ready = True
                del self._awaiting[rid]

    def _drop_hold(self, hold: Hold) -> None:
        if hold.open:
            hold.open = False
            holds = self._holds.get(hold.key_hash, [])
            holds.remove(hold)
            if not holds:
                self._holds.pop(hold.key_hash, None)

    def _owed(self, key_hash: bytes, view: _View) -> int:
        """Held and receipted amounts the view does not reflect yet (under the lock)."""
        pending = [p for p in self._pending.get(key_hash, [])
                   if p.included_seq is None or p.included_seq > view.seq]
        if pending:
            self._pending[key_hash] = pending
        else:
            self._pending.pop(key_hash, None)
        return sum(h.amount for h in self._holds.get(key_hash, [])) + sum(p.fee for p in pending)

    @staticmethod
    def _key_hash(authorization: str | None) -> bytes:
        if not authorization:
            raise _unauthorized("no API key was given (send `Authorization: Bearer KEY`)")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("the Authorization header must be `Bearer KEY`")
        try:
            return api_key_hash(parse_api_key(token.strip()))
        except LedgerError:
            raise _unauthorized("the API key is malformed") from None

    def _view(self, key_hash: bytes) -> _View:
        now = self.clock()
        with self._lock:
            cached = self._views.get(key_hash)
            if cached is not None and now - cached.fetched_at < self.key_ttl_s:
                return cached
            seq = self._seq
        try:
            doc = self.backend.billing_key(key_hash.hex())
        except LedgerError as exc:
            if exc.code.http_status == 404:
                raise _unauthorized("no such API key is authorized on the ledger") from None
            raise ApiError(503, f"the ledger cannot be reached to check the API key ({exc.code.name}); "
                                f"{errors.BILLING_UNAVAILABLE.message}", code=errors.BILLING_UNAVAILABLE.name,
                           headers={"Retry-After": "1"}) from None
        view = _View(str(doc["provider"]), int(doc["remaining"]),
                     int(doc["account_prepaid"]) + int(doc["account_withdrawing"]), int(doc["expires"]),
                     bool(doc["revoked"]), int(doc["height"]), seq, now)
        with self._lock:
            old = self._views.get(key_hash)
            if old is None or old.seq <= seq:
                self._views[key_hash] = view
        return view

    # -- the batcher (its own thread) ----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ailedger-receipts", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 30.0) -> None:
        """Send every queued receipt and wait for it (up to `timeout_s`), then stop the thread.

        Receipts still waiting for their attribution go without it: close the attribution worker first.
        """
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        elif self._queue:
            self._run()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until everything queued so far is included or failed."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._lock.notify_all()
            while self.stats.included + self.stats.failed < self.stats.receipts and time.monotonic() < deadline:
                self._lock.wait(0.05)

    def _ready(self) -> int:
        return sum(1 for p in self._queue if p.ready)

    def _run(self) -> None:
        retries = 0
        while True:
            with self._lock:
                retry, self._retry = self._retry, None
                if retry is None:
                    first_wait = self.clock()
                    while not self._closing and self._ready() < self.batch_size and (
                            not self._ready() or self.clock() - first_wait < self.flush_s):
                        self._lock.wait(self.flush_s)
                        self._ripen()
                    self._ripen(everything=self._closing)
                    ready = [p for p in self._queue if p.ready][:self.batch_size]
                    if not ready:
                        if self._closing and not self._queue:
                            return
                        continue
                    chosen = {id(p) for p in ready}
                    batch, self._queue = ready, [p for p in self._queue if id(p) not in chosen]
                    raw = None
                else:
                    batch, raw = retry
            try:
                self._send(batch, raw)
                retries = 0
            except LedgerError as exc:
                if exc.code not in TRANSIENT or (self._closing and retries >= CLOSING_RETRIES):
                    _log.error("could not submit %d receipts: %s", len(batch), exc)
                    self._retry = None
                    self._settle(batch, None)
                    continue
                retries += 1  # the node is down or busy: keep the batch and its signed bytes, try again later
                _log.warning("receipts wait for the node (%s); retry %d", exc.code.name, retries)
                time.sleep(min(5.0, 0.1 * 2 ** retries))
            except Exception:  # a batch must never kill the thread: later receipts still have to be sent
                _log.exception("could not submit %d receipts", len(batch))
                self._retry = None
                self._settle(batch, None)

    def _send(self, batch: list[_Pending], raw: bytes | None) -> None:
        """Submit one transaction for `batch` and wait for it; a transient failure raises, leaving the
        batch and its signed bytes in `_retry`.

        Why the same bytes again: if an earlier try reached the node and only its answer was lost,
        the node answers `duplicate_transaction` and we wait for that transaction; a new signature
        would put the same receipts in a second transaction, which the ledger refuses whole.
        """
        if raw is None:
            self._retry = (batch, None)  # a transient failure posting the records keeps the batch
            self._post_records(batch)
            payload = SUBMIT_RECEIPTS_CODEC.encode(SubmitReceipts([p.receipt for p in batch]))
            nonce = int(self.backend.account(self.provider.address_text)["pending_nonce"])
            raw = sign_tx(self.provider, self.chain_id, nonce, self.fee, SUBMIT_RECEIPTS, payload)
        self._retry = (batch, raw)
        tx_id = decode_tx(raw).id.hex()
        try:
            self.backend.submit(raw)
        except LedgerError as exc:
            if exc.code in (errors.NONCE_REPLAYED, errors.NONCE_GAP):  # another signer took the nonce: re-sign
                self._retry = None
                landed = [p for p in batch if self._on_ledger(p)]
                if landed:
                    self._settle(landed, EARLIER)
                rest = [p for p in batch if p not in landed]
                if rest:
                    self._send(rest, None)
                return
            if exc.code is not errors.DUPLICATE_TX:  # transient: raise with _retry kept; else refused for good
                if exc.code not in TRANSIENT:
                    self._retry = None
                raise
        view = self.backend.wait_for_tx(tx_id, self.tx_timeout_s)
        self._retry = None
        receipt = view.get("receipt") or {}
        if view.get("status") != "included" or not receipt.get("ok", False):
            _log.error("receipt transaction %s did not apply: %s", tx_id, receipt.get("message", view.get("status")))
            self._settle(batch, None)
            return
        self._settle(batch, tx_id)

    def _post_records(self, batch: list[_Pending]) -> None:
        """Put the batch's attribution records in the node's blob store before the receipts name them.

        A transient failure raises (the batch is tried again later); a refusal drops the records from
        their receipts, which then go without attribution: a receipt is never lost over its record.
        """
        blobs = [p.blob for p in batch if p.blob is not None]
        if not blobs:
            return
        try:
            self.backend.put_blobs(blobs)
        except LedgerError as exc:
            if exc.code in TRANSIENT:
                raise
            _log.error("the node refused %d attribution records (%s); their receipts go without attribution",
                       len(blobs), exc)
            for p in batch:
                if p.blob is not None:
                    p.receipt, p.blob = replace(p.receipt, attribution=NO_HASH, shares=[]), None

    def _on_ledger(self, p: _Pending) -> bool:
        try:
            doc = self.backend.billing_receipt(p.receipt.id.hex())
        except LedgerError as exc:
            if exc.code is errors.RECEIPT_NOT_FOUND:
                return False
            raise
        return str(doc.get("provider")) == self.provider.address_text

    def _settle(self, batch: list[_Pending], tx_id: str | None) -> None:
        with self._lock:
            self._seq += 1
            for p in batch:
                p.included_seq = self._seq  # failed ones stop counting too: the ledger never charged them
            if tx_id is None:
                self.stats.failed += len(batch)
            else:
                self.stats.included += len(batch)
                if tx_id != EARLIER:
                    self.stats.txs += 1
            for p in batch:  # the next admission of these keys fetches a view that shows this block
                self._views.pop(p.receipt.key_hash, None)
            self._lock.notify_all()
