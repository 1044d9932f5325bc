"""Attribution of answers after they are generated, on one background thread with a bounded queue.

Why not on the engine's step thread, nor in the request: attributing an answer costs a backward
pass and an index search, and an answer must not wait for that unless its caller asked for the
record (`"attribution": true`). The engine's `on_done` callback hands the finished answer here
(`submit` never blocks); the worker computes the record, stores it (attribution_store.py) and tells
whoever listens for that receipt: the receipt batcher, which holds the receipt until then so it
carries the record's digest and shares, and a request that waits to return the record.

Nothing is lost: when the queue is full, when the engine fails to attribute (an empty answer, a
damaged index) or when the server stops before the worker reaches an answer, the outcome is a
failure, stored with its code and passed on, and the receipt goes to the ledger without attribution.
`full` lets the API turn away new requests of attributed adapters (429) before that happens.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.serving.attribution_hook import AnswerAttribution, Attributed, check
from ailedger.serving.attribution_store import AttributionStore, StoredAttribution
from ailedger.serving.catalog import Resolved

_log = logging.getLogger("ailedger.serving.attribution")
DEFAULT_QUEUE = 256
WAIT_S = 60.0  # how long a reader of a record still being computed waits for it


@dataclass(frozen=True)
class Outcome:
    """What became of one answer's attribution: the record, or the error that replaced it."""

    receipt_id: str
    attributed: Attributed | None
    error: LedgerError | None = None


Listener = Callable[[Outcome], None]


@dataclass
class Task:
    receipt_id: str
    model: str  # the adapter's name
    version: int
    adapter_hash: str
    prompt_ids: Sequence[int]
    answer_ids: Sequence[int]
    listeners: list[Listener] = field(default_factory=list)


class AttributionWorker:
    """Computes, stores and announces attribution records, one answer at a time (start it, close it)."""

    def __init__(self, hook: AnswerAttribution, store: AttributionStore | None = None,
                 max_queue: int = DEFAULT_QUEUE) -> None:
        self.hook = hook
        self.store = store if store is not None else AttributionStore()
        self._queue: queue.Queue[Task | None] = queue.Queue(max_queue)
        self._lock = threading.Condition()
        self._pending: set[str] = set()  # submitted, outcome not stored yet
        self._thread: threading.Thread | None = None
        self.done = 0
        self.failed = 0

    def covers(self, resolved: Resolved) -> bool:
        """True when `resolved` is an adapter whose answers this server attributes."""
        a = resolved.adapter
        return a is not None and self.hook.covers(a.name, a.version, a.adapter_hash)

    def full(self) -> bool:
        return self._queue.full()

    def submit(self, task: Task) -> None:
        """Queue an answer for attribution (never blocks; a full queue makes the outcome a failure)."""
        with self._lock:
            self._pending.add(task.receipt_id)
        try:
            self._queue.put_nowait(task)
        except queue.Full:
            self._settle(task, None, LedgerError(errors.SERVER_OVERLOADED, "the attribution queue is full; the "
                                                                           "answer was not attributed"))

    # -- reads -------------------------------------------------------------------------------------------
    def lookup(self, receipt_id: str, wait_s: float = WAIT_S) -> tuple[StoredAttribution | None, bool]:
        """(what is stored for the receipt, whether it is still being computed after `wait_s`)."""
        deadline = time.monotonic() + wait_s
        with self._lock:
            while receipt_id in self._pending and (left := deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            still = receipt_id in self._pending
        return self.store.get(receipt_id), still

    # -- the thread ------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ailedger-attribution", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 120.0) -> None:
        """Attribute what is queued (up to `timeout_s`), then fail whatever is left, so receipts can go."""
        if self._thread is not None:
            with contextlib.suppress(queue.Full):  # a queue still full after the timeout: the join times out too
                self._queue.put(None, timeout=timeout_s)
            self._thread.join(timeout_s)
            self._thread = None
        while True:
            try:
                task = self._queue.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                self._settle(task, None, LedgerError(errors.INTERRUPTED, "the server stopped before this answer "
                                                                         "was attributed"))

    def _run(self) -> None:
        while (task := self._queue.get()) is not None:
            self._one(task)

    def _one(self, task: Task) -> None:
        try:
            found = check(self.hook.attribute(task.model, task.version, task.adapter_hash, task.prompt_ids,
                                              task.answer_ids))
        except LedgerError as exc:
            self._settle(task, None, exc)
        except Exception as exc:  # the worker must outlive one bad answer: later receipts still wait on it
            _log.exception("attributing the answer of receipt %s failed", task.receipt_id)
            self._settle(task, None, LedgerError(errors.INTERNAL, f"{type(exc).__name__}: {exc}"))
        else:
            self._settle(task, found, None)

    def _settle(self, task: Task, found: Attributed | None, error: LedgerError | None) -> None:
        try:
            if found is not None:
                self.store.put(task.receipt_id, task.model, task.version, task.adapter_hash, found)
            else:
                assert error is not None
                _log.warning("no attribution for receipt %s: %s", task.receipt_id, error)
                self.store.put_failure(task.receipt_id, task.model, task.version, task.adapter_hash,
                                       error.code.name, error.detail)
        except Exception:  # a full disk must not keep the receipt from the ledger
            _log.exception("could not store the attribution of receipt %s", task.receipt_id)
        outcome = Outcome(task.receipt_id, found, error)
        with self._lock:
            self._pending.discard(task.receipt_id)
            if found is None:
                self.failed += 1
            else:
                self.done += 1
            self._lock.notify_all()
        for listener in task.listeners:
            try:
                listener(outcome)
            except Exception:
                _log.exception("an attribution listener failed for receipt %s", task.receipt_id)
