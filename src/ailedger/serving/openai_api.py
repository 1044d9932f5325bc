"""The OpenAI-compatible HTTP API over one `Engine`: `/v1/models`, `/v1/completions`, `/v1/chat/completions`.

Why handlers never step the model: the engine's background loop (`Engine.start`) owns the batch, so
a handler only resolves the model, tokenizes, submits, and awaits. The engine calls back on its
step thread (`on_token`, `on_done`); the callbacks hand each event to the event loop with
`call_soon_threadsafe`, so no handler blocks a thread while the model works, and any number of
streams share one batch.

Every answer names the exact weights that produced it (the base's weights hash and the adapter's
hash, in `system_fingerprint`, in an `ailedger` object and in `x-ailedger-*` headers) and carries a
receipt id. What each request consumed is metered when it ends, whether it finished, failed, or its
client went away mid-stream (then it counts what was generated before the cancel took effect).

With `billing` (a server started against a ledger), a request must carry an API key bound to a
ledger account for this server (401 otherwise); the most it can cost is held against the caller's
prepaid balance before any work (402 when it does not fit), and when it ends a receipt for what it
used (the same receipt id, the exact weights, the citations) is queued for the ledger (billing.py).
A request that fails on the server's side is not billed. Without `billing` the API is open.

A request may ask for retrieval (`"rag": {"datanet", "version", "k"}`): the best records of that
frozen Datanet snapshot go into the prompt as numbered sources (grounding.py), and the answer, its
headers and its usage record cite them, so settlement can pay their contributors. Searching, and
building a snapshot's index the first time, run on a worker thread, never on the event loop.

An answer of an adapter this server attributes (an `attribution` worker over an attribution hook)
gets an attribution record, computed after generation on the worker's thread: the receipt waits for
it and carries its digest and per-record shares. A request with `"attribution": true` waits too and
returns the record as `ailedger.attribution` (streaming: in the last chunk before [DONE]); asking for
it on a model without a bundle is a 404 `attribution_missing` before any work. `GET
/v1/attribution/{receipt_id}` returns a stored record later.

Overload is refused up front: at most `max_pending` requests may be submitted and unfinished, and
the next gets 429 with Retry-After instead of joining an unbounded queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request as HttpRequest
from transformers import PreTrainedTokenizerBase

import ailedger
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.hexid import parse_hex32
from ailedger.serving.attribution_worker import WAIT_S, AttributionWorker, Outcome, Task
from ailedger.serving.billing import Hold, LedgerBilling
from ailedger.serving.catalog import Catalog, Resolved, ServedAdapter
from ailedger.serving.engine import Engine, Generation, Request
from ailedger.serving.grounding import chat_with_sources, citations_json, ground, prompt_with_sources
from ailedger.serving.openai_params import (
    ApiError,
    Params,
    attribution_param,
    bad,
    chat_messages,
    common,
    completion_prompt,
    rag_params,
)
from ailedger.serving.retrieval import Hit, Retriever
from ailedger.serving.sampling import SamplingParams

MAX_BODY_BYTES = 1 << 20
TURN_END_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>")  # chat templates close a turn with one of these
Kind = Literal["completion", "chat"]

_log = logging.getLogger("ailedger.serving")


@dataclass(frozen=True)
class UsageRecord:
    """What one request consumed and which weights answered it: the seed of a receipt."""

    receipt_id: str
    model: str
    base_weights_hash: str
    adapter_hash: str | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    citations: tuple[str, ...] = ()  # hashes (hex) of the Datanet records the prompt quoted, best first


class Meter:
    """Usage of finished requests (the most recent `keep`), plus running totals; thread-safe."""

    def __init__(self, keep: int = 10_000) -> None:
        self.records: deque[UsageRecord] = deque(maxlen=keep)
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._lock = threading.Lock()

    def add(self, record: UsageRecord) -> None:
        with self._lock:
            self.records.append(record)
            self.prompt_tokens += record.prompt_tokens
            self.completion_tokens += record.completion_tokens

    def find(self, receipt_id: str) -> UsageRecord | None:
        with self._lock:
            return next((r for r in self.records if r.receipt_id == receipt_id), None)


class Admission:
    """At most `limit` requests submitted and unfinished; the next is told to retry (429)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.pending >= self.limit:
                return False
            self.pending += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.pending -= 1


class _Job:
    """One request's bridge from the step thread to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.texts: asyncio.Queue[str | None] = asyncio.Queue()  # decoded text so far per token; None: done
        self.finished: asyncio.Future[None] = loop.create_future()

    def on_token(self, gen: Generation, token: int) -> None:
        self._post(self.texts.put_nowait, gen.text or "")

    def on_done(self, gen: Generation) -> None:
        self._post(self._done)

    def _done(self) -> None:
        if not self.finished.done():
            self.finished.set_result(None)
        self.texts.put_nowait(None)

    def _post(self, fn: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: no one is listening any more
            self.loop.call_soon_threadsafe(fn, *args)


def default_stop_ids(tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    """End of text, and the token that ends a chat turn when the vocabulary has one."""
    ids = {tokenizer.eos_token_id} if isinstance(tokenizer.eos_token_id, int) else set()
    vocab = tokenizer.get_vocab()
    ids |= {vocab[t] for t in TURN_END_TOKENS if t in vocab}
    return frozenset(ids)


def decoder(tokenizer: PreTrainedTokenizerBase) -> Any:
    """The `decode` an engine behind this API needs: completion text without special tokens."""
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=True)


def create_serving_app(engine: Engine, catalog: Catalog, tokenizer: PreTrainedTokenizerBase, *,
                       max_pending: int = 64, default_max_tokens: int = 16, default_chat_max_tokens: int = 512,
                       retry_after_s: int = 1,
                       stop_ids: Iterable[int] | None = None, meter: Meter | None = None,
                       max_body_bytes: int = MAX_BODY_BYTES, retriever: Retriever | None = None,
                       billing: LedgerBilling | None = None, attribution: AttributionWorker | None = None,
                       attribution_wait_s: float = WAIT_S) -> FastAPI:
    """The API over `engine` (whose loop the caller starts) serving what `catalog` names.

    With a `retriever`, requests may ask for retrieval over a Datanet snapshot (`rag`); without, that is a 400.
    With `billing`, every generation needs an API key and is paid for from the caller's prepaid balance.
    With `attribution` (a started worker), answers of the adapters its hook covers are attributed.
    """
    if engine.decode is None:
        raise ValueError("the engine needs a decode function (see `decoder`) for text and stop strings")
    app = FastAPI(title="ailedger serving", version=ailedger.__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)
    api = _Api(engine, catalog, tokenizer, Admission(max_pending), meter or Meter(),
               {"completion": default_max_tokens, "chat": default_chat_max_tokens}, retry_after_s,
               frozenset(default_stop_ids(tokenizer) if stop_ids is None else stop_ids), max_body_bytes, retriever,
               billing, attribution, attribution_wait_s)
    app.state.api = api
    app.state.meter = api.meter
    app.state.admission = api.admission

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: HttpRequest, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _error(ApiError(exc.status_code, str(exc.detail), code="not_found" if exc.status_code == 404 else None))

    @app.get("/v1/models")
    async def list_models() -> Response:
        return await api.guard(lambda: api.models())

    @app.get("/v1/models/{model:path}")
    async def get_model(model: str) -> Response:
        return await api.guard(lambda: api.model(model))

    @app.post("/v1/completions")
    async def completions(request: HttpRequest) -> Response:
        return await api.guard(lambda: api.generate(request, "completion"))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: HttpRequest) -> Response:
        return await api.guard(lambda: api.generate(request, "chat"))

    @app.get("/v1/attribution/{receipt_id}")
    async def get_attribution(receipt_id: str) -> Response:
        return await api.guard(lambda: api.attribution_record(receipt_id))

    return app


def _error(exc: ApiError) -> JSONResponse:
    headers = dict(exc.headers)
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _sse(data: dict[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


def _stable(text: str, stops: tuple[str, ...]) -> str:
    """The part of streamed text that can be sent now: not a broken character, not a possible stop's start."""
    text = text.rstrip("\ufffd")
    cut = min((text.index(s) for s in stops if s in text), default=len(text))
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                cut = min(cut, len(text) - k)
                break
    return text[:cut]


class _Api:
    def __init__(self, engine: Engine, catalog: Catalog, tokenizer: PreTrainedTokenizerBase, admission: Admission,
                 meter: Meter, default_max_tokens: dict[Kind, int], retry_after_s: int, stop_ids: frozenset[int],
                 max_body_bytes: int, retriever: Retriever | None, billing: LedgerBilling | None,
                 attribution: AttributionWorker | None = None, attribution_wait_s: float = WAIT_S) -> None:
        self.engine = engine
        self.catalog = catalog
        self.tokenizer = tokenizer
        self.admission = admission
        self.meter = meter
        self.default_max_tokens = default_max_tokens
        self.retry_after_s = retry_after_s
        self.stop_ids = stop_ids
        self.max_body_bytes = max_body_bytes
        self.retriever = retriever
        self.billing = billing
        self.attribution = attribution
        self.attribution_wait_s = attribution_wait_s

    async def guard(self, handler: Any) -> Response:
        """Run a handler; any failure becomes an OpenAI-shaped error, never a stack trace."""
        try:
            result = handler()
            if asyncio.iscoroutine(result):
                result = await result
            assert isinstance(result, Response)
            return result
        except ApiError as exc:
            return _error(exc)
        except LedgerError as exc:
            return _error(ApiError.of(exc))
        except Exception:
            _log.exception("unexpected error in the serving API")
            return _error(ApiError(500, "the server hit an unexpected fault; see its log", code="internal_error"))

    # -- models --------------------------------------------------------------------------------------------
    def _model_json(self, adapter: ServedAdapter | None) -> dict[str, Any]:
        base = self.catalog.base
        if adapter is None:
            return {"id": base.name, "object": "model", "created": 0, "owned_by": "ailedger", "kind": "base",
                    "base": {"name": base.name, "weights_hash": base.weights_hash}, "adapter_hash": None}
        p = adapter.provenance
        return {"id": adapter.ref, "object": "model", "created": 0, "owned_by": str(p.get("owner", "local")),
                "kind": "adapter", "name": adapter.name, "version": adapter.version,
                "base": {"name": base.name, "weights_hash": base.weights_hash},
                "adapter_hash": adapter.adapter_hash, "datanet": p.get("datanet"),
                "price_per_1k_tokens": p.get("price_per_1k_tokens"), "provenance": dict(p)}

    def models(self) -> Response:
        data = [self._model_json(None)] + [self._model_json(a) for a in self.catalog.served()]
        return JSONResponse({"object": "list", "data": data})

    def model(self, ref: str) -> Response:
        return JSONResponse(self._model_json(self._resolve(ref).adapter))

    def _resolve(self, ref: str) -> Resolved:
        try:
            return self.catalog.resolve(ref)
        except LedgerError as exc:
            raise ApiError.of(exc, "model") from None

    # -- generation ----------------------------------------------------------------------------------------
    async def _body(self, request: HttpRequest) -> dict[str, Any]:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise ApiError(413, f"the request body exceeds {self.max_body_bytes} bytes", code="request_too_large")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > self.max_body_bytes:
                raise ApiError(413, f"the request body exceeds {self.max_body_bytes} bytes", code="request_too_large")
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise bad(f"the body is not valid JSON: {exc}", None, "invalid_json") from None
        if not isinstance(body, dict):
            raise bad("the body must be a JSON object", None, "invalid_json")
        return body

    def _prompt_ids(self, body: dict[str, Any], kind: Kind, sources: Sequence[Hit] = ()) -> list[int]:
        if kind == "chat":
            messages = chat_with_sources(chat_messages(body), sources)
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            assert isinstance(text, str)
            prompt: str | list[int] = text
        else:
            prompt = completion_prompt(body)
            if sources and isinstance(prompt, str):
                prompt = prompt_with_sources(prompt, sources)
        if isinstance(prompt, list):
            vocab = len(self.tokenizer)
            if any(not 0 <= t < vocab for t in prompt):
                raise bad(f"token ids must be in [0, {vocab})", "prompt")
            return prompt
        ids = list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if not ids:
            raise bad("the prompt is empty", "prompt" if kind == "completion" else "messages", "empty_prompt")
        return ids

    def _max_tokens(self, params: Params, prompt_len: int, kind: Kind) -> int:
        room = self.engine.context_length - prompt_len
        if room < 1:
            raise bad(f"the prompt ({prompt_len} tokens) fills the model's context ({self.engine.context_length})",
                      "messages" if kind == "chat" else "prompt", "context_length_exceeded")
        if params.max_tokens is None:
            return min(room, self.default_max_tokens[kind])
        if params.max_tokens > room:
            raise bad(f"prompt ({prompt_len} tokens) + max_tokens ({params.max_tokens}) exceeds the model's "
                      f"context ({self.engine.context_length})", "max_tokens", "context_length_exceeded")
        return params.max_tokens

    async def generate(self, http: HttpRequest, kind: Kind) -> Response:
        body = await self._body(http)
        params = common(body, "max_completion_tokens" if kind == "chat" else "max_tokens")
        rag = rag_params(body)
        wants_record = attribution_param(body)
        resolved = self._resolve(params.model)
        worker = self.attribution if self.attribution is not None and self.attribution.covers(resolved) else None
        if wants_record and worker is None:
            raise ApiError.of(LedgerError(errors.ATTRIBUTION_MISSING, f"this server attributes no answer of "
                                                                      f"{resolved.model}"), "attribution")
        if worker is not None and worker.full():
            raise ApiError(429, "the server is behind on attributing answers; retry after the Retry-After seconds",
                           code="server_overloaded", headers={"Retry-After": str(self.retry_after_s)})
        key_hash = None if self.billing is None else await asyncio.to_thread(
            self.billing.authenticate, http.headers.get("authorization"))  # before any work is done
        sources: list[Hit] | None = None
        if rag is None:
            prompt = self._prompt_ids(body, kind)
        else:
            # room kept for the answer: max_tokens, else the default length (at most a quarter of the context)
            room = params.max_tokens or min(self.default_max_tokens[kind], self.engine.context_length // 4)
            prompt, sources = await asyncio.to_thread(  # searching may build an index: off the event loop
                ground, self.retriever, body, kind == "chat", rag,
                lambda chosen: self._prompt_ids(body, kind, chosen), self.engine.context_length - room)
        cited = tuple(h.record for h in sources or ())
        max_tokens = self._max_tokens(params, len(prompt), kind)
        hold = None if key_hash is None or self.billing is None else await asyncio.to_thread(
            self.billing.hold, key_hash, resolved, len(prompt), max_tokens)
        receipt_id = secrets.token_hex(32)  # also the ledger receipt's id
        job = _Job(asyncio.get_running_loop())
        charge: dict[str, int] = {}
        record: asyncio.Future[Outcome] | None = job.loop.create_future() if wants_record else None

        def done(gen: Generation) -> None:  # on the step thread
            self.admission.leave()
            usage = UsageRecord(receipt_id, resolved.model, resolved.base.weights_hash,
                                resolved.adapter.adapter_hash if resolved.adapter else None,
                                gen.usage.prompt_tokens, gen.usage.completion_tokens, gen.finish_reason or "", cited)
            self.meter.add(usage)
            attribute = worker is not None and resolved.adapter is not None and gen.finish_reason != "error"
            if hold is not None and self.billing is not None:
                if gen.finish_reason == "error":  # the server's fault: not billed
                    self.billing.release(hold)
                else:
                    charge["fee"] = self.billing.finish(hold, receipt_id, usage.prompt_tokens,
                                                        usage.completion_tokens, cited, attribution=attribute)
                    charge["price_per_1k_tokens"] = hold.price_per_1k
            if attribute and worker is not None and resolved.adapter is not None:
                self._attribute(worker, resolved, receipt_id, prompt, gen, hold is not None, job, record)
            job.on_done(gen)

        request = Request(prompt, max_tokens, resolved.adapter_id,
                          SamplingParams(params.temperature, params.top_p, params.seed), self.stop_ids, params.stop,
                          on_token=job.on_token if params.stream else None, on_done=done, id=receipt_id)
        if not self.admission.enter():
            self._release(hold)
            raise ApiError(429, "the server is at capacity; retry after the Retry-After seconds",
                           code="server_overloaded", headers={"Retry-After": str(self.retry_after_s)})
        try:
            gen = self.engine.submit(request)
        except BaseException as exc:
            self.admission.leave()
            self._release(hold)
            if isinstance(exc, LedgerError):
                raise ApiError.of(exc) from None
            raise
        cites = None if rag is None else citations_json(sources or [], rag)
        answer = _Answer(kind, receipt_id, resolved, params, cites, charge, record, self.attribution_wait_s)
        if params.stream:
            return StreamingResponse(self._stream(job, gen, answer), media_type="text/event-stream",
                                     headers={**answer.headers(), "Cache-Control": "no-cache"})
        try:
            await _until_done_or_gone(http, job.finished)
        finally:
            if not gen.done.is_set():
                self.engine.cancel(receipt_id)
        if gen.finish_reason == "error":
            raise ApiError.of(gen.error, status=500) if gen.error else ApiError(500, "generation failed")
        await answer.wait_for_record()
        return JSONResponse(answer.full(gen), headers=answer.headers())

    def _release(self, hold: Hold | None) -> None:
        if hold is not None and self.billing is not None:
            self.billing.release(hold)

    def _attribute(self, worker: AttributionWorker, resolved: Resolved, receipt_id: str, prompt: list[int],
                   gen: Generation, billed: bool, job: _Job, record: asyncio.Future[Outcome] | None) -> None:
        """Queue the finished answer for attribution; its receipt and a waiting response hear the outcome."""
        adapter = resolved.adapter
        assert adapter is not None
        task = Task(receipt_id, adapter.name, adapter.version, adapter.adapter_hash, list(prompt),
                    answer_ids(gen))
        if billed and self.billing is not None:
            billing = self.billing
            task.listeners.append(lambda outcome: billing.attach(outcome.receipt_id, outcome.attributed))
        if record is not None:
            task.listeners.append(lambda outcome: job._post(_settle_future, record, outcome))
        worker.submit(task)

    async def attribution_record(self, receipt_id: str) -> Response:
        """`GET /v1/attribution/{receipt_id}`: the stored record (waiting a while for one still computed)."""
        rid = parse_hex32(receipt_id, errors.BAD_RECEIPT_ID).hex()
        if self.attribution is None:
            raise LedgerError(errors.ATTRIBUTION_NOT_FOUND, "this server attributes no answers")
        stored, still = await asyncio.to_thread(self.attribution.lookup, rid, self.attribution_wait_s)
        if still:
            raise LedgerError(errors.ATTRIBUTION_NOT_FOUND, f"the record of {rid} is still being computed; ask again "
                                                            "in a minute")
        if stored is None:
            raise LedgerError(errors.ATTRIBUTION_NOT_FOUND, rid)
        if not stored.ok:
            raise LedgerError(errors.ATTRIBUTION_NOT_FOUND, f"attributing the answer of {rid} failed "
                                                            f"({stored.error_code}: {stored.error_detail})")
        return JSONResponse({"receipt_id": rid, "attribution": stored.record, "digest": stored.digest,
                             "model": f"{stored.model}@{stored.version}", "adapter_hash": stored.adapter_hash})

    async def _stream(self, job: _Job, gen: Generation, answer: _Answer) -> AsyncIterator[str]:
        sent = ""
        try:
            if answer.kind == "chat":
                yield _sse(answer.chunk({"role": "assistant", "content": ""}, None))
            while (text := await job.texts.get()) is not None:
                ready = _stable(text, answer.params.stop)
                if len(ready) > len(sent) and ready.startswith(sent):
                    yield _sse(answer.chunk(ready[len(sent):], None))
                    sent = ready
            if gen.finish_reason == "error":
                err = ApiError.of(gen.error, status=500) if gen.error else ApiError(500, "generation failed")
                yield _sse(err.body())
            else:
                final = gen.text or ""
                if len(final) > len(sent) and final.startswith(sent):
                    yield _sse(answer.chunk(final[len(sent):], None))
                await answer.wait_for_record()
                yield _sse(answer.chunk("" if answer.kind == "completion" else {}, gen.finish_reason, last=True))
                if answer.params.include_usage:
                    yield _sse(answer.usage_chunk(gen))
            yield _sse("[DONE]")
        except Exception:  # the headers are sent: the failure can only be told as an event
            _log.exception("unexpected error while streaming")
            yield _sse(ApiError(500, "the server hit an unexpected fault; see its log", code="internal_error").body())
        finally:
            if not gen.done.is_set():  # the client went away (or the server is stopping): free the row
                self.engine.cancel(gen.request.id)


def answer_ids(gen: Generation) -> list[int]:
    """The answer's token ids as attributed: what was generated, less the stop token that ended it."""
    ids = list(gen.tokens)
    if ids and gen.finish_reason == "stop" and ids[-1] in gen.request.stop_ids:
        ids.pop()
    return ids


def _settle_future(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


async def _until_done_or_gone(http: HttpRequest, finished: asyncio.Future[None]) -> None:
    """Wait for the generation, or return early if the client disconnects first."""

    async def gone() -> None:
        while (await http.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(gone())
    try:
        await asyncio.wait([finished, watcher], return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()


def _no_record(exc: LedgerError) -> dict[str, Any]:
    return {"attribution": None, "attribution_error": {"code": exc.code.name, "message": exc.code.message,
                                                       "detail": exc.detail}}


class _Answer:
    """The response documents of one request, in OpenAI's shapes, each naming the weights that answered."""

    def __init__(self, kind: Kind, receipt_id: str, resolved: Resolved, params: Params,
                 citations: list[dict[str, Any]] | None = None, charge: dict[str, int] | None = None,
                 record: asyncio.Future[Outcome] | None = None, record_wait_s: float = WAIT_S) -> None:
        self.kind = kind
        self.record, self.record_wait_s = record, record_wait_s
        self.attribution: dict[str, Any] = {}  # filled by wait_for_record when the request asked for the record
        self.charge = charge if charge is not None else {}  # fee and price, filled when a billed request ends
        self.receipt_id = receipt_id
        self.resolved = resolved
        self.params = params
        self.id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{receipt_id}"
        self.created = int(time.time())
        adapter = resolved.adapter.adapter_hash if resolved.adapter else None
        self.weights: dict[str, Any] = {"receipt_id": receipt_id, "model": resolved.model,
                                        "base_weights_hash": resolved.base.weights_hash, "adapter_hash": adapter}
        self.citations = citations
        if citations is not None:  # a retrieval request: the records its prompt quoted
            self.weights["citations"] = citations
        self.fingerprint = f"base:{resolved.base.weights_hash};adapter:{adapter or 'none'}"

    def ledger(self) -> dict[str, Any]:
        """The `ailedger` object: receipt id, exact weights, citations, (billed requests) fee and price, and
        (requests that asked) the attribution record."""
        return {**self.weights, **self.charge, **self.attribution}

    async def wait_for_record(self) -> None:
        """Wait (bounded) for the answer's attribution record, when the request asked for it."""
        if self.record is None or self.attribution:
            return
        try:
            outcome = await asyncio.wait_for(asyncio.shield(self.record), self.record_wait_s)
        except TimeoutError:
            self.attribution = _no_record(LedgerError(
                errors.ATTRIBUTION_NOT_FOUND, f"still being computed; fetch it with GET /v1/attribution/"
                                              f"{self.receipt_id}"))
            return
        if outcome.attributed is None:
            self.attribution = _no_record(outcome.error or LedgerError(errors.ATTRIBUTION_NOT_FOUND))
        else:
            self.attribution = {"attribution": outcome.attributed.record,
                                "attribution_digest": outcome.attributed.digest.hex()}

    def headers(self) -> dict[str, str]:
        out = {"x-ailedger-receipt-id": self.receipt_id, "x-ailedger-model": self.resolved.model,
               "x-ailedger-base-hash": self.resolved.base.weights_hash,
               "x-ailedger-adapter-hash": self.weights["adapter_hash"] or "none"}
        if self.citations is not None:
            out["x-ailedger-citations"] = str(len(self.citations))
        return out

    def _envelope(self, chunk: bool) -> dict[str, Any]:
        obj = {"chat": "chat.completion", "completion": "text_completion"}[self.kind]
        return {"id": self.id, "object": f"{obj}.chunk" if chunk and self.kind == "chat" else obj,
                "created": self.created, "model": self.resolved.model, "system_fingerprint": self.fingerprint}

    @staticmethod
    def _usage(gen: Generation) -> dict[str, int]:
        return asdict(gen.usage) | {"total_tokens": gen.usage.total_tokens}

    def full(self, gen: Generation) -> dict[str, Any]:
        text = gen.text or ""
        choice: dict[str, Any] = {"index": 0, "finish_reason": gen.finish_reason, "logprobs": None}
        if self.kind == "chat":
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return {**self._envelope(False), "choices": [choice], "usage": self._usage(gen), "ailedger": self.ledger()}

    def chunk(self, delta: str | dict[str, str], finish_reason: str | None, last: bool = False) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason, "logprobs": None}
        if self.kind == "chat":
            choice["delta"] = delta if isinstance(delta, dict) else {"content": delta}
        else:
            choice["text"] = delta
        out = {**self._envelope(True), "choices": [choice]}
        if self.params.include_usage:
            out["usage"] = None
        if last:
            out["ailedger"] = self.ledger()
        return out

    def usage_chunk(self, gen: Generation) -> dict[str, Any]:
        return {**self._envelope(True), "choices": [], "usage": self._usage(gen), "ailedger": self.ledger()}
