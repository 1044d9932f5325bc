"""Attribution records of served answers: computed after generation, stored, returned, carried by receipts.

The server is the real OpenAI-compatible app on the tiny model behind uvicorn on loopback. The
attribution engine is `ShareByTokens`, a TEST DOUBLE OF THE ATTRIBUTION HOOK (not of the engine,
the store, the batcher or the node): a small real implementation of
`serving.attribution_hook.AnswerAttribution` that computes a deterministic record from the token
ids (each answer token votes for contributor `token % 3`; basis points by largest remainder), so
every assertion can recompute what the server should have said. The real engine's own serving
tests live with it (`tests/test_attribution_*.py`).

With billing, a real node process holds the ledger (the fixtures of test_serving_billing.py): each
receipt of an attributed answer must carry the record's digest and shares, and the node's blob
store must hold the record's bytes under that digest.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ailedger.api.client import HttpClient
from ailedger.api.server import run_server_in_thread
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory.basemodel import load_base
from ailedger.factory.train import adapter_hash
from ailedger.serving.attribution_hook import Attributed
from ailedger.serving.attribution_store import AttributionStore
from ailedger.serving.attribution_worker import AttributionWorker, Task
from ailedger.serving.catalog import Catalog
from ailedger.serving.stack import Stack, build_stack, served_base
from tests.test_cli import fails, home, run
from tests.test_serving_api import PROMPT, make_stack, serving
from tests.test_serving_billing import ledger, paid_server, settled
from tests.test_serving_lora import adapter_dirs, tiny_dir

__all__ = ["adapter_dirs", "home", "ledger", "tiny_dir"]

RECORDS = tuple(sorted(hashlib.sha256(bytes([70 + i])).digest() for i in range(3)))  # record hashes paid


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def expected_shares(answer: Sequence[int]) -> list[tuple[bytes, int]]:
    """Largest remainder over the votes `token % 3`; contributors with 0 bp left out."""
    votes = [sum(1 for t in answer if t % 3 == i) for i in range(3)]
    floors = [v * 10_000 // len(answer) for v in votes]
    order = sorted(range(3), key=lambda i: (-(votes[i] * 10_000 % len(answer)), i))
    for i in order[:10_000 - sum(floors)]:
        floors[i] += 1
    return [(RECORDS[i], bp) for i, bp in enumerate(floors) if bp]


class ShareByTokens:
    """TEST DOUBLE OF THE ATTRIBUTION HOOK: covers the adapter hashes given; shares by token votes."""

    def __init__(self, adapter_hashes: set[str], delay: threading.Event | None = None) -> None:
        self.adapter_hashes = adapter_hashes
        self.delay = delay  # when set, attribute() waits for it (a slow engine)
        self.calls = 0

    def covers(self, model: str, version: int, adapter_hash: str) -> bool:
        return adapter_hash in self.adapter_hashes

    def attribute(self, model: str, version: int, adapter_hash: str, prompt_ids: Sequence[int],
                  answer_ids: Sequence[int]) -> Attributed:
        self.calls += 1
        if self.delay is not None:
            self.delay.wait(30)
        if not answer_ids:
            raise LedgerError(errors.EMPTY_ANSWER, f"0 answer tokens after {len(prompt_ids)} prompt tokens")
        shares = expected_shares(answer_ids)
        record = {"method": "test-double", "model": f"{model}@{version}", "adapter_hash": adapter_hash,
                  "prompt_tokens": list(prompt_ids), "answer_tokens": list(answer_ids),
                  "shares": [{"record": a.hex(), "bp": bp} for a, bp in shares]}
        body = canonical(record)
        return Attributed(record, hashlib.sha256(body).digest(), body, tuple(shares))


def check_record(record: dict[str, Any], digest: str, tokenizer: Any, text: str) -> None:
    """The record is the double's, for the answer the caller got, and `digest` hashes its canonical bytes."""
    assert hashlib.sha256(canonical(record)).hexdigest() == digest
    answer = record["answer_tokens"]
    assert answer and tokenizer.decode(answer, skip_special_tokens=True).startswith(text)
    assert record["shares"] == [{"record": a.hex(), "bp": bp} for a, bp in expected_shares(answer)]


# -- an open server (no ledger) ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def open_server(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> Iterator[tuple[str, Stack, ShareByTokens]]:
    """legal@1 (a0) and legal@2 (a1) are attributed; news@1 (a3) and the base are not."""
    stack = make_stack(tiny_dir, adapter_dirs)
    hook = ShareByTokens({adapter_hash(adapter_dirs["a0"]), adapter_hash(adapter_dirs["a1"])})
    stack.attribution = AttributionWorker(hook, AttributionStore(), max_queue=4)
    with serving(stack) as url:
        yield url, stack, hook


def post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=60)


def test_asked_for_record_comes_with_the_answer_and_by_receipt_id(open_server: tuple[str, Stack, Any]) -> None:
    url, stack, _ = open_server
    r = post(url, "/v1/completions", {"model": "legal@1", "prompt": PROMPT, "max_tokens": 8, "temperature": 0,
                                      "attribution": True})
    assert r.status_code == 200, r.text
    doc = r.json()
    led = doc["ailedger"]
    check_record(led["attribution"], led["attribution_digest"], stack.base.tokenizer, doc["choices"][0]["text"])
    assert led["attribution"]["prompt_tokens"] == list(stack.base.tokenizer(PROMPT, add_special_tokens=False)
                                                        ["input_ids"])
    got = httpx.get(f"{url}/v1/attribution/{led['receipt_id'].upper()}", timeout=60)
    assert got.status_code == 200
    assert got.json() == {"receipt_id": led["receipt_id"], "attribution": led["attribution"],
                          "digest": led["attribution_digest"], "model": "legal@1",
                          "adapter_hash": led["adapter_hash"]}


def test_show_reads_a_record_from_the_server(open_server: tuple[str, Stack, Any], home: Path) -> None:
    """`ailedger attribution show RECEIPT --server URL`: the record as stored; the server's error codes pass through."""
    url = open_server[0]
    led = post(url, "/v1/completions", {"model": "legal@1", "prompt": PROMPT, "max_tokens": 5, "temperature": 0,
                                        "attribution": True}).json()["ailedger"]
    shown = json.loads(run("--json", "attribution", "show", led["receipt_id"], "--server", url).stdout)
    assert shown == led["attribution"]
    fails("attribution", "show", "ab" * 32, "--server", url, code="attribution_not_found")


def test_every_answer_of_a_covered_adapter_is_attributed_unasked(open_server: tuple[str, Stack, Any]) -> None:
    url, stack, _ = open_server
    r = post(url, "/v1/chat/completions", {"model": "legal@2", "max_completion_tokens": 6, "temperature": 0,
                                           "messages": [{"role": "user", "content": "Who pays?"}]})
    led = r.json()["ailedger"]
    assert "attribution" not in led  # not asked: the answer did not wait
    got = httpx.get(f"{url}/v1/attribution/{led['receipt_id']}", timeout=60).json()  # waits for the worker
    check_record(got["attribution"], got["digest"], stack.base.tokenizer, r.json()["choices"][0]["message"]["content"])
    for model in ("news@1", "tiny"):  # not covered: never attributed, nothing stored
        led = post(url, "/v1/completions", {"model": model, "prompt": PROMPT, "max_tokens": 3}).json()["ailedger"]
        missing = httpx.get(f"{url}/v1/attribution/{led['receipt_id']}", timeout=60)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "attribution_not_found"


def test_streamed_record_is_in_the_last_chunk_before_done(open_server: tuple[str, Stack, Any]) -> None:
    url, stack, _ = open_server
    body = {"model": "legal@1", "max_tokens": 8, "temperature": 0, "stream": True, "attribution": True,
            "messages": [{"role": "user", "content": "Tell me a fact."}]}
    events: list[Any] = []
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = line.removeprefix("data: ")
                events.append(data if data == "[DONE]" else json.loads(data))
    assert events[-1] == "[DONE]"
    last = events[-2]
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"])
    assert last["choices"][0]["finish_reason"] is not None
    check_record(last["ailedger"]["attribution"], last["ailedger"]["attribution_digest"], stack.base.tokenizer, text)
    assert all("attribution" not in e.get("ailedger", {}) for e in events[:-2])


def test_refusals(open_server: tuple[str, Stack, ShareByTokens]) -> None:
    url, stack, hook = open_server
    calls, served = hook.calls, len(stack.meter.records)
    for model in ("news@1", "tiny"):
        r = post(url, "/v1/completions", {"model": model, "prompt": PROMPT, "max_tokens": 3, "attribution": True})
        assert r.status_code == 404 and r.json()["error"]["code"] == "attribution_missing"
        assert r.json()["error"]["param"] == "attribution"
    r = post(url, "/v1/chat/completions", {"model": "legal@1", "attribution": "yes",
                                           "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_type"
    assert len(stack.meter.records) == served and hook.calls == calls  # refused before any generation
    bad = httpx.get(url + "/v1/attribution/xyz", timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_receipt_id"
    unknown = httpx.get(url + "/v1/attribution/" + "ab" * 32, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "attribution_not_found"


def test_an_empty_answer_is_stored_as_a_failure(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    """Every token stops the answer, so it has no tokens to attribute: `empty_answer`, told and stored."""
    stack = make_stack(tiny_dir, adapter_dirs)
    stack.attribution = AttributionWorker(ShareByTokens({adapter_hash(adapter_dirs["a0"])}), AttributionStore())
    with serving(stack, stop_ids=range(len(stack.base.tokenizer))) as url:
        r = post(url, "/v1/completions", {"model": "legal@1", "prompt": PROMPT, "max_tokens": 4,
                                          "attribution": True})
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 1
        led = r.json()["ailedger"]
        assert led["attribution"] is None and led["attribution_error"]["code"] == "empty_answer"
        got = httpx.get(f"{url}/v1/attribution/{led['receipt_id']}", timeout=60)
        assert got.status_code == 404 and "empty_answer" in got.json()["error"]["message"]
        stored = stack.attribution.store.get(led["receipt_id"])
        assert stored is not None and not stored.ok and stored.error_code == "empty_answer"


def test_a_full_queue_turns_requests_away_and_never_loses_an_outcome(tmp_path: Path, store_url: str | None) -> None:
    """On a file, and on PostgreSQL (the records then live beside a chain kept there)."""
    where = store_url or str(tmp_path / "a.sqlite")
    gate = threading.Event()
    hook = ShareByTokens({"aa" * 32}, delay=gate)
    worker = AttributionWorker(hook, AttributionStore(where), max_queue=1)
    heard: list[Any] = []
    worker.start()
    try:
        for i in range(3):  # one being computed, one queued, the third finds the queue full
            worker.submit(Task(f"{i:064x}", "m", 1, "aa" * 32, [1, 2], [3, 4, 5], [heard.append]))
            if i == 0:
                while hook.calls == 0:
                    threading.Event().wait(0.01)
        assert worker.full()
        assert [o.error.code for o in heard if o.error] == [errors.SERVER_OVERLOADED]
    finally:
        gate.set()
        worker.close()
    assert sorted(o.receipt_id for o in heard) == [f"{i:064x}" for i in range(3)]
    reopened = AttributionStore(where)  # the records outlive the server
    first = reopened.get(f"{0:064x}")
    assert first is not None and first.ok and first.record is not None
    assert hashlib.sha256(first.body or b"").hexdigest() == first.digest
    assert len(reopened) == 3


def test_a_reader_waits_for_a_record_being_computed() -> None:
    gate = threading.Event()
    worker = AttributionWorker(ShareByTokens({"aa" * 32}, delay=gate), AttributionStore())
    worker.start()
    try:
        worker.submit(Task("ab" * 32, "m", 1, "aa" * 32, [1], [2, 3], []))
        stored, still = worker.lookup("ab" * 32, wait_s=0.1)
        assert stored is None and still
        threading.Timer(0.2, gate.set).start()
        stored, still = worker.lookup("ab" * 32, wait_s=30)
        assert stored is not None and stored.ok and not still
    finally:
        gate.set()
        worker.close()


def test_serve_insists_on_a_bundle_only_when_told(home: Path, tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    root = next(iter(adapter_dirs.values())).parent
    fails("serve", "--base", str(tiny_dir), "--adapters", str(root), "--attribution", code="attribution_missing")


def test_close_fails_what_it_could_not_reach() -> None:
    gate = threading.Event()
    hook = ShareByTokens({"aa" * 32}, delay=gate)
    worker = AttributionWorker(hook, AttributionStore(), max_queue=8)
    heard: list[Any] = []
    for i in range(2):  # never started: close must still settle both, so their receipts can go
        worker.submit(Task(f"{i:064x}", "m", 1, "aa" * 32, [1], [2], [heard.append]))
    worker.close()
    assert [o.error.code for o in heard if o.error] == [errors.INTERRUPTED] * 2 and hook.calls == 0


# -- the real attribution engine behind the same server --------------------------------------------------------

@pytest.fixture(scope="module")
def facts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Stack, Any]]:
    """The tiny base, an adapter `facts` trained on tests/attribution_sim.py's facts with its real bundle.

    The hook is built before `build_stack` puts the LoRA slots into the base: the attribution engine
    copies the base to take gradients on, and must copy it as trained.
    """
    from ailedger.attribution.attributor import Attributor, ServingAttribution
    from ailedger.factory.tiny import build_tiny
    from tests.attribution_sim import build_facts_bundle, train_facts

    base = load_base(build_tiny(tmp_path_factory.mktemp("base") / "tiny", seed=5))
    root = tmp_path_factory.mktemp("served")
    trained = train_facts(base, root / "facts")
    bundle = build_facts_bundle(base, trained.out_dir)
    hook = ServingAttribution.from_dirs({("facts", 1): trained.out_dir}, base, roots={("facts", 1): bundle.root.hex()})
    checker = Attributor.load(trained.out_dir, base)
    stack = build_stack(base, Catalog.from_directory(served_base(base), root), max_batch=4,
                        attribution=AttributionWorker(hook, AttributionStore()))
    with serving(stack) as url:
        yield url, stack, checker


def test_real_records_verify_and_pay_by_the_bundle(facts_server: tuple[str, Stack, Any]) -> None:
    from ailedger.attribution.attributor import record_bytes, verify
    from tests.attribution_sim import NAMES, question

    url, stack, checker = facts_server
    r = post(url, "/v1/chat/completions", {"model": "facts", "max_completion_tokens": 24, "temperature": 0,
                                           "attribution": True,
                                           "messages": [{"role": "user", "content": question(NAMES[0])}]})
    assert r.status_code == 200, r.text
    led = r.json()["ailedger"]
    record = led["attribution"]
    assert record is not None, led.get("attribution_error")
    assert hashlib.sha256(record_bytes(record)).hexdigest() == led["attribution_digest"]
    assert record["bundle_root"] == checker.root and record["adapter_hash"] == led["adapter_hash"]
    assert sum(s["bp"] for s in record["shares"]) in (0, 10_000)
    assert verify(record, checker).ok  # anyone with the bundle recomputes the same record
    got = httpx.get(f"{url}/v1/attribution/{led['receipt_id']}", timeout=120).json()
    assert got["attribution"] == record and got["digest"] == led["attribution_digest"]
    text = r.json()["choices"][0]["message"]["content"]
    assert stack.base.tokenizer.decode(record["answer_tokens"], skip_special_tokens=True).startswith(text)


# -- with a ledger: receipts carry the digest and shares, the node holds the record ----------------------------

@pytest.fixture(scope="module")
def paid(tiny_dir: Path, adapter_dirs: dict[str, Path],
         ledger: tuple[str, dict[str, str], Path]) -> Iterator[tuple[str, Stack, HttpClient, dict[str, str]]]:
    worker = AttributionWorker(ShareByTokens({adapter_hash(adapter_dirs["a0"])}), AttributionStore())
    with paid_server(tiny_dir, adapter_dirs, ledger[0], worker) as (api, stack, node):
        yield api, stack, node, ledger[1]


def test_receipts_carry_the_record_and_the_node_holds_it(paid: tuple[str, Stack, HttpClient, dict[str, str]]) -> None:
    url, stack, node, keys = paid
    auth = {"Authorization": f"Bearer {keys['main']}"}
    asked = httpx.post(url + "/v1/completions", headers=auth, timeout=60, json={
        "model": "legal@1", "prompt": PROMPT, "max_tokens": 6, "temperature": 0, "attribution": True}).json()
    unasked = httpx.post(url + "/v1/completions", headers=auth, timeout=60, json={
        "model": "legal@1", "prompt": "Who owns the data", "max_tokens": 5}).json()
    plain = httpx.post(url + "/v1/completions", headers=auth, timeout=60, json={
        "model": "legal@2", "prompt": PROMPT, "max_tokens": 4}).json()  # legal@2 has no bundle here
    settled(stack)
    for doc in (asked, unasked):
        rid = doc["ailedger"]["receipt_id"]
        receipt = node.billing_receipt(rid)
        stored = stack.attribution.store.get(rid) if stack.attribution else None
        assert stored is not None and stored.ok and stored.body is not None and stored.record is not None
        assert receipt["status"] == "charged" and receipt["attribution"] == stored.digest
        assert receipt["shares"] == [{"record": a.hex(), "bp": bp}
                                     for a, bp in expected_shares(stored.record["answer_tokens"])]
        assert sum(s["bp"] for s in receipt["shares"]) == 10_000
        assert node.get_blob(stored.digest) == stored.body  # anyone can fetch the record by the receipt's hash
    assert asked["ailedger"]["attribution_digest"] == node.billing_receipt(asked["ailedger"]["receipt_id"])[
        "attribution"]
    receipt = node.billing_receipt(plain["ailedger"]["receipt_id"])
    assert receipt["attribution"] == "00" * 32 and receipt["shares"] == []


def test_a_failed_attribution_never_costs_the_receipt(paid: tuple[str, Stack, HttpClient, dict[str, str]]) -> None:
    _, stack, node, keys = paid
    assert stack.attribution is not None and stack.billing is not None
    app = stack.app(max_pending=8, stop_ids=range(len(stack.base.tokenizer)))  # every answer is empty
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                           timeout_graceful_shutdown=2))
    with run_server_in_thread(server) as api:
        doc = httpx.post(api + "/v1/completions", headers={"Authorization": f"Bearer {keys['main']}"}, timeout=60,
                         json={"model": "legal@1", "prompt": PROMPT, "max_tokens": 4}).json()
    settled(stack)
    receipt = node.billing_receipt(doc["ailedger"]["receipt_id"])
    assert receipt["status"] == "charged" and receipt["attribution"] == "00" * 32 and receipt["shares"] == []
    stored = stack.attribution.store.get(doc["ailedger"]["receipt_id"])
    assert stored is not None and stored.error_code == "empty_answer"
