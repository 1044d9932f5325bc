"""Paid serving: API keys bound to ledger accounts, prepaid balances, receipts on the ledger in batches.

A real node process over HTTP holds: the tiny base registered by its real weights hash, two
adapter versions published over a Datanet snapshot (priced 3,000 and 1,000 per 1k tokens), and a
caller who deposited a prepaid balance and authorized API keys for the serving provider. The
serving stack runs in this process behind real uvicorn, with `LedgerBilling` over an `HttpClient`
to that node, so every answer's fee must come back as an on-ledger receipt charging exactly that.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn

from ailedger.api.client import HttpClient
from ailedger.api.server import run_server_in_thread
from ailedger.billing import payloads as b
from ailedger.billing.keys import api_key_hash, new_api_key
from ailedger.chain.genesis import Allocation, Genesis
from ailedger.cli.backend import Embedded
from ailedger.cli.keys import KeyDir
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.merkle import merkle_root
from ailedger.datanet import payloads as p
from ailedger.datanet.gates.records import canonical_record
from ailedger.factory.basemodel import load_base
from ailedger.factory.train import adapter_hash
from ailedger.models import payloads as m
from ailedger.modules import default_runtime
from ailedger.serving.attribution_worker import AttributionWorker
from ailedger.serving.billing import LedgerBilling
from ailedger.serving.catalog import Catalog
from ailedger.serving.stack import Stack, build_stack, served_base
from tests.conftest import CHAIN_ID, key
from tests.conftest_api import NodeProcess, make_chain
from tests.test_cli import fails, home
from tests.test_datanet_pipeline import C1, OWNER, PARAMS, PROPOSER, UNIT, V1, create, send
from tests.test_serving_api import serve_command
from tests.test_serving_lora import adapter_dirs, tiny_dir

__all__ = ["adapter_dirs", "home", "tiny_dir"]

ALICE, SERVER, OTHER = key(61), key(62), key(63)
BASE_PRICE = 500
PRICES = {"legal@1": 3_000, "legal@2": 1_000}
DEPOSIT = 5 * UNIT


def fee(tokens: int, price: int) -> int:
    return (tokens * price + 999) // 1000  # the ledger's rule, written out independently (docs/billing.md)


def _setup(backend: Embedded, tiny: Path, dirs: dict[str, Path]) -> dict[str, str]:
    """Datanet `kb` v1, the tiny base, legal@1 (a0) and legal@2 (a1); ALICE's deposit and three keys."""
    create(backend, "kb", window=1)
    send(backend, V1, p.REGISTER_VALIDATOR, p.Named("kb"), p.NAMED_CODEC)
    hashes = [bytes.fromhex(h) for h in backend.put_blobs([canonical_record({"text": f"fact {i}"}) for i in range(3)])]
    send(backend, C1, p.CONTRIBUTE, p.Contribute("kb", hashes, merkle_root(hashes)), p.CONTRIBUTE_CODEC)
    send(backend, V1, p.VOTE, p.VoteBatch("kb", [p.Ballot(h, 1) for h in hashes]), p.VOTE_CODEC)
    send(backend, OWNER, p.SNAPSHOT, p.Named("kb"), p.NAMED_CODEC)
    info = load_base(tiny).info
    send(backend, OWNER, m.REGISTER_BASE, m.RegisterBase(info.name, bytes.fromhex(info.weights_hash),
                                                         bytes.fromhex(info.config_hash), info.architecture,
                                                         info.params_count, info.context_length, "apache-2.0"),
         m.REGISTER_BASE_CODEC)
    for version, name in ((1, "a0"), (2, "a1")):
        publish = m.PublishAdapter("legal", info.name, bytes.fromhex(adapter_hash(dirs[name])), "kb", 1,
                                   bytes([version]) * 32, bytes([9 + version]) * 32, 8, PRICES[f"legal@{version}"])
        send(backend, OWNER, m.PUBLISH_ADAPTER, publish, m.PUBLISH_ADAPTER_CODEC)
    send(backend, ALICE, b.DEPOSIT, b.Amount(DEPOSIT), b.AMOUNT_CODEC)
    keys = {"main": new_api_key(), "small": new_api_key(), "elsewhere": new_api_key(), "revoked": new_api_key()}
    for name, provider, allowance in (("main", SERVER, 2 * UNIT), ("small", SERVER, 20), ("elsewhere", OTHER, UNIT),
                                      ("revoked", SERVER, UNIT)):
        send(backend, ALICE, b.AUTHORIZE_KEY, b.AuthorizeKey(api_key_hash(keys[name]), provider.address, allowance, 0),
             b.AUTHORIZE_KEY_CODEC)
    send(backend, ALICE, b.REVOKE_KEY, b.KeyRef(api_key_hash(keys["revoked"])), b.KEY_REF_CODEC)
    return keys


@pytest.fixture(scope="module")
def ledger(tiny_dir: Path, adapter_dirs: dict[str, Path],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A node process over the prepared chain: (its URL, the API keys by name, the data directory)."""
    allocs = [Allocation(k.address, 100 * UNIT) for k in (OWNER, C1, ALICE, SERVER, OTHER)]
    allocs.append(Allocation(V1.address, UNIT, 5 * UNIT))
    data = make_chain(tmp_path_factory.mktemp("billing") / "data",
                      Genesis(CHAIN_ID, 1_700_000_000_000, PROPOSER.public_key, allocs,
                              {**PARAMS, "billing_base_price_per_1k": BASE_PRICE}), default_runtime(), PROPOSER)
    backend = Embedded(data, write=True)
    try:
        keys = _setup(backend, tiny_dir, adapter_dirs)
    finally:
        backend.close()
    node = NodeProcess(data, block_interval_s=0.05)
    try:
        yield node.wait_listening(), keys, data
    finally:
        node.signal(signal.SIGTERM)
        node.wait_exit()


@contextmanager
def paid_server(tiny_dir: Path, adapter_dirs: dict[str, Path], url: str,
                attribution: AttributionWorker | None = None) -> Iterator[tuple[str, Stack, HttpClient]]:
    """The serving stack billing through the node at `url`, behind uvicorn: (its URL, the stack, a node client)."""
    node = HttpClient(url)
    base = load_base(tiny_dir)
    root = next(iter(adapter_dirs.values())).parent
    catalog = Catalog.from_ledger(served_base(base), node.ledger_models(include_retired=True), root)
    stack = build_stack(base, catalog, max_batch=8, attribution=attribution,
                        billing=LedgerBilling(node, SERVER, batch_size=16, flush_s=0.05, key_ttl_s=0.2))
    stack.start()
    try:
        server = uvicorn.Server(uvicorn.Config(stack.app(max_pending=64), log_level="warning", access_log=False,
                                               lifespan="off", timeout_graceful_shutdown=2))
        with run_server_in_thread(server) as api:
            yield api, stack, node
    finally:
        stack.close()
        node.close()


@pytest.fixture(scope="module")
def served(tiny_dir: Path, adapter_dirs: dict[str, Path],
           ledger: tuple[str, dict[str, str], Path]) -> Iterator[tuple[str, Stack, HttpClient]]:
    with paid_server(tiny_dir, adapter_dirs, ledger[0]) as found:
        yield found


def client(url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0, timeout=30)


def settled(stack: Stack) -> LedgerBilling:
    assert stack.billing is not None
    stack.billing.flush(30)
    return stack.billing


def test_billed_answers_become_exact_receipts(served: tuple[str, Stack, HttpClient],
                                              ledger: tuple[str, dict[str, str], Path]) -> None:
    api, stack, node = served
    keys = ledger[1]
    before = node.billing_key(api_key_hash(keys["main"]).hex())
    refunded = node.settlement_totals()["refunded"]
    c = client(api, keys["main"])
    answers = [c.completions.create(model=model, prompt="The ledger", max_tokens=6, temperature=0)
               for model in ("legal@1", "legal", "tiny")]
    assert [a.model for a in answers] == ["legal@1", "legal@2", "tiny"]
    billing = settled(stack)
    total = 0
    for a, price in zip(answers, (3_000, 1_000, BASE_PRICE), strict=True):
        extra = (a.model_extra or {})["ailedger"]
        assert a.usage is not None and extra["price_per_1k_tokens"] == price
        assert extra["fee"] == fee(a.usage.total_tokens, price) > 0
        r = node.billing_receipt(extra["receipt_id"])
        assert (r["status"], r["charged"], r["fee"]) == ("charged", extra["fee"], extra["fee"])
        assert (r["prompt_tokens"], r["completion_tokens"]) == (a.usage.prompt_tokens, a.usage.completion_tokens)
        assert r["base_hash"] == extra["base_weights_hash"]
        assert r["adapter_hash"] == (extra["adapter_hash"] or "00" * 32)
        assert r["provider"] == SERVER.address_text and r["caller"] == ALICE.address_text
        total += r["charged"]
    after = node.billing_key(api_key_hash(keys["main"]).hex())
    assert after["spent"] - before["spent"] == total
    # settled in the blocks that stored them: data parts of answers without attribution come back
    refunded = node.settlement_totals()["refunded"] - refunded
    assert after["account_prepaid"] == before["account_prepaid"] - total + refunded
    assert billing.stats.failed == 0 and billing.stats.included == billing.stats.receipts


def test_keys_and_balances_are_checked_before_any_work(served: tuple[str, Stack, HttpClient],
                                                       ledger: tuple[str, dict[str, str], Path]) -> None:
    api, stack, _ = served
    keys = ledger[1]
    queued = stack.billing.stats.receipts if stack.billing else 0
    body = {"model": "legal@1", "prompt": "The ledger", "max_tokens": 4}
    cases: list[tuple[dict[str, str], int, str, str]] = [
        ({}, 401, "invalid_api_key", "no API key"),
        ({"Authorization": "Basic abc"}, 401, "invalid_api_key", "Bearer"),
        ({"Authorization": "Bearer sk-not-ours"}, 401, "invalid_api_key", "malformed"),
        ({"Authorization": f"Bearer {new_api_key()}"}, 401, "invalid_api_key", "no such API key"),
        ({"Authorization": f"Bearer {keys['elsewhere']}"}, 401, "invalid_api_key", "another provider"),
        ({"Authorization": f"Bearer {keys['revoked']}"}, 401, "invalid_api_key", "revoked"),
        ({"Authorization": f"Bearer {keys['small']}"}, 402, "insufficient_quota", "allowance left 20"),
    ]
    for headers, status, code, words in cases:
        r = httpx.post(f"{api}/v1/completions", json=body, headers=headers, timeout=30)
        assert r.status_code == status, (headers, r.text)
        err = r.json()["error"]
        assert err["code"] == code and words in err["message"], err
    with pytest.raises(openai.APIStatusError) as exc:  # the official client sees 402 as an API error
        client(api, keys["small"]).completions.create(model="tiny", prompt="x", max_tokens=200)
    assert exc.value.status_code == 402
    assert (stack.billing.stats.receipts if stack.billing else 0) == queued  # nothing ran, nothing billed


def test_stream_cut_short_is_billed_for_what_was_sent(served: tuple[str, Stack, HttpClient],
                                                      ledger: tuple[str, dict[str, str], Path]) -> None:
    api, stack, node = served
    body = {"model": "legal@2", "prompt": "The ledger", "max_tokens": 120, "stream": True, "temperature": 0}
    with httpx.stream("POST", f"{api}/v1/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {ledger[1]['main']}"}) as r:
        receipt_id = r.headers["x-ailedger-receipt-id"]
        lines = r.iter_lines()
        got = 0
        for line in lines:
            got += line.startswith("data: ")
            if got == 3:
                break  # leave mid-stream
    settled(stack)
    deadline = time.monotonic() + 10
    while stack.meter.find(receipt_id) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    used = stack.meter.find(receipt_id)
    assert used is not None and 3 <= used.completion_tokens < 120
    settled(stack)
    receipt = node.billing_receipt(receipt_id)
    assert receipt["completion_tokens"] == used.completion_tokens
    assert receipt["charged"] == fee(used.prompt_tokens + used.completion_tokens, 1_000)


def test_load_200_requests_20_clients_all_accounted(served: tuple[str, Stack, HttpClient],
                                                    ledger: tuple[str, dict[str, str], Path]) -> None:
    """200 requests from 20 concurrent clients: no 5xx, every answer's receipt on the ledger, fees exact."""
    api, stack, node = served
    key = ledger[1]["main"]
    billing = settled(stack)
    start = billing.stats.receipts
    before = node.billing_key(api_key_hash(key).hex())
    models = ["tiny", "legal@1", "legal@2", "legal"]

    async def one(http: httpx.AsyncClient, i: int) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"model": models[i % 4], "max_tokens": 2 + i % 5, "temperature": 0}
        if i % 3:
            body["prompt"] = f"Request {i} asks the ledger"
            path = "/v1/completions"
        else:
            body["messages"] = [{"role": "user", "content": f"Request {i}: who was paid?"}]
            path = "/v1/chat/completions"
        if i % 4 == 1:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
            async with http.stream("POST", path, json=body) as r:
                events = [json.loads(line[6:]) async for line in r.aiter_lines()
                          if line.startswith("data: {")]
                return r.status_code, events[-1] if r.status_code == 200 else {}
        r = await http.post(path, json=body)
        return r.status_code, r.json()

    async def main() -> list[tuple[int, dict[str, Any]]]:
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                     limits=limits) as http:
            gate = asyncio.Semaphore(20)

            async def bounded(i: int) -> tuple[int, dict[str, Any]]:
                async with gate:
                    return await one(http, i)

            return await asyncio.gather(*(bounded(i) for i in range(200)))

    results = asyncio.run(main())
    statuses = [s for s, _ in results]
    assert all(s < 500 for s in statuses) and statuses.count(200) == 200, sorted(set(statuses))
    billing = settled(stack)
    assert billing.stats.receipts - start == 200 and billing.stats.failed == 0
    assert billing.stats.included == billing.stats.receipts
    fees = {}
    for _, doc in results:
        extra = doc["ailedger"]
        assert extra["fee"] == fee(doc["usage"]["total_tokens"], extra["price_per_1k_tokens"])
        fees[extra["receipt_id"]] = extra["fee"]
    assert len(fees) == 200
    listed = node.billing_receipts(api_key_hash(key).hex(), offset=before["receipts"], limit=1000)
    on_ledger = {r["id"]: r for r in listed["receipts"]}
    assert set(on_ledger) == set(fees)
    assert all(on_ledger[i]["charged"] == f and on_ledger[i]["status"] == "charged" for i, f in fees.items())
    after = node.billing_key(api_key_hash(key).hex())
    assert after["spent"] - before["spent"] == sum(fees.values())
    assert billing.stats.txs < 200  # batched, not one transaction per request


def test_serve_command_bills_through_a_node(tiny_dir: Path, adapter_dirs: dict[str, Path],
                                            ledger: tuple[str, dict[str, str], Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`ailedger serve --node URL --provider KEY`: the receipts of its answers reach the ledger, even on exit."""
    url, keys, _ = ledger
    env = {**os.environ, "AILEDGER_HOME": str(tmp_path), "AILEDGER_PASSPHRASE": "pw", "AILEDGER_KDF_COST": "test"}
    monkeypatch.setenv("AILEDGER_KDF_COST", "test")
    KeyDir(tmp_path / "keys").create("server", "pw", SERVER)
    root = next(iter(adapter_dirs.values())).parent
    args = ["--base", str(tiny_dir), "--adapters", str(root), "--max-batch", "4", "--node", url,
            "--provider", "server", "--receipt-batch", "64"]
    with serve_command(args, env) as (proc, api):
        answer = client(api, keys["main"]).completions.create(model="legal@1", prompt="The ledger", max_tokens=3)
        receipt_id = (answer.model_extra or {})["ailedger"]["receipt_id"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    receipt = HttpClient(url).billing_receipt(receipt_id)
    assert receipt["status"] == "charged" and receipt["model"] == "legal" and receipt["version"] == 1


def test_serve_with_a_node_needs_a_provider_or_free(home: Path) -> None:
    fails("serve", "--node", "http://127.0.0.1:9", code="bad_argument", exit=2)
    fails("serve", "--provider", "server", code="bad_argument", exit=2)


class _LostAnswers:
    """The node, except that the first `lose` submissions reach it but their answers are lost on the way back."""

    def __init__(self, node: HttpClient, lose: int) -> None:
        self.node, self.lose = node, lose

    def __getattr__(self, name: str) -> Any:
        return getattr(self.node, name)

    def submit(self, raw: bytes) -> dict[str, Any]:
        answer = self.node.submit(raw)
        if self.lose:
            self.lose -= 1
            raise LedgerError(errors.NODE_UNREACHABLE, "connection reset")
        return answer


def test_receipts_survive_a_lost_answer_without_being_sent_twice(served: tuple[str, Stack, HttpClient],
                                                                ledger: tuple[str, dict[str, str], Path]) -> None:
    _, stack, node = served
    billing = LedgerBilling(_LostAnswers(node, lose=1), SERVER, flush_s=0.01)  # type: ignore[arg-type]
    key = ledger[1]["main"]
    resolved = stack.catalog.resolve("legal@1")
    ids = []
    for i in range(3):
        hold = billing.hold(billing.authenticate(f"Bearer {key}"), resolved, 10, 5)
        ids.append(f"{0xE0 + i:02x}" * 32)
        billing.finish(hold, ids[-1], 10, 2)
    billing.start()
    billing.close()
    assert (billing.stats.included, billing.stats.failed, billing.stats.txs) == (3, 0, 1)
    assert [node.billing_receipt(i)["status"] for i in ids] == ["charged"] * 3
