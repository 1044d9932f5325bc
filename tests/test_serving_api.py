"""The OpenAI-compatible API on the tiny model: real uvicorn on loopback, the official `openai` client.

The catalog comes from a registry document shaped like a node's `ledger_models()` answer, so pinned
versions, retired versions and versions without local files are all exercised without a ledger.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn

from ailedger.api.server import run_server_in_thread
from ailedger.factory.basemodel import load_base
from ailedger.factory.train import adapter_hash
from ailedger.serving.catalog import Catalog, ServedAdapter, ServedBase
from ailedger.serving.engine import Request
from ailedger.serving.openai_api import default_stop_ids
from ailedger.serving.stack import Stack, build_stack, served_base
from tests.conftest_api import REPO
from tests.test_serving_lora import adapter_dirs, tiny_dir

__all__ = ["adapter_dirs", "tiny_dir"]  # session fixtures shared with the LoRA tests

PROMPT = "The ledger records"


def registry(base: ServedBase, adapter_dirs: dict[str, Path]) -> dict[str, Any]:
    """A `ledger_models()` document: legal@1..3 (3 retired), news@1, and ghost@1 whose files are elsewhere."""

    def version(name: str, n: int, digest: str, retired: bool = False) -> dict[str, Any]:
        return {"id": f"{name}@{n}", "name": name, "version": n, "owner": "al1owner",
                "base": {"name": base.name, "weights_hash": base.weights_hash}, "adapter_hash": digest,
                "datanet": {"name": "news", "version": n, "snapshot_root": f"{n:02x}" * 32, "records": 3},
                "rank": 8, "price_per_1k_tokens": 3000, "retired": retired}

    h = {k: adapter_hash(p) for k, p in adapter_dirs.items()}
    return {"height": 9, "models": [version("legal", 1, h["a0"]), version("legal", 2, h["a1"]),
                                    version("legal", 3, h["a2"], retired=True), version("news", 1, h["a3"]),
                                    version("ghost", 1, "ee" * 32)]}


def make_stack(tiny_dir: Path, adapter_dirs: dict[str, Path], slow_s: float = 0.0) -> Stack:
    base = load_base(tiny_dir)
    served = served_base(base)
    root = next(iter(adapter_dirs.values())).parent
    stack = build_stack(base, Catalog.from_ledger(served, registry(served, adapter_dirs), root), max_batch=8)
    if slow_s:
        decode = stack.engine.decode
        assert decode is not None

        def slow(ids: list[int]) -> str:
            time.sleep(slow_s)  # a slower model, so a test can act while a request is in flight
            return decode(ids)

        stack.engine.decode = slow
    return stack


@contextmanager
def serving(stack: Stack, start: bool = True, **options: Any) -> Iterator[str]:
    app = stack.app(**options)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                           timeout_graceful_shutdown=2))
    if start:
        stack.start()
    try:
        with run_server_in_thread(server) as url:
            yield url
    finally:
        stack.close()


@pytest.fixture(scope="module")
def served(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> Iterator[tuple[str, Stack]]:
    stack = make_stack(tiny_dir, adapter_dirs)
    with serving(stack) as url:
        yield url, stack


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="test", max_retries=0, timeout=30)


def test_models_list_provenance(served: tuple[str, Stack], adapter_dirs: dict[str, Path]) -> None:
    url, stack = served
    ids = [m.id for m in client(url).models.list()]
    assert ids == ["tiny", "legal@1", "legal@2", "news@1"]  # legal@3 is retired, ghost@1 has no files here
    data = {m["id"]: m for m in httpx.get(url + "/v1/models").json()["data"]}
    legal2 = data["legal@2"]
    assert legal2["adapter_hash"] == adapter_hash(adapter_dirs["a1"])
    assert legal2["base"]["weights_hash"] == stack.base.info.weights_hash == data["tiny"]["base"]["weights_hash"]
    assert legal2["datanet"] == {"name": "news", "version": 2, "snapshot_root": "02" * 32, "records": 3}
    assert client(url).models.retrieve("legal").id == "legal@2"


def test_completion_pins_version_and_equals_engine(served: tuple[str, Stack], adapter_dirs: dict[str, Path]) -> None:
    url, stack = served
    raw = client(url).completions.with_raw_response.create(model="legal@2", prompt=PROMPT, max_tokens=12,
                                                           temperature=0)
    answer = raw.parse()
    a1 = adapter_hash(adapter_dirs["a1"])
    assert answer.model == "legal@2" and raw.headers["x-ailedger-adapter-hash"] == a1
    assert raw.headers["x-ailedger-base-hash"] == stack.base.info.weights_hash
    assert answer.system_fingerprint == f"base:{stack.base.info.weights_hash};adapter:{a1}"
    assert (answer.model_extra or {})["ailedger"]["receipt_id"] == raw.headers["x-ailedger-receipt-id"]
    tok = stack.base.tokenizer
    ids = list(tok(PROMPT, add_special_tokens=False)["input_ids"])
    gen = stack.engine.submit(Request(ids, 12, a1, stop_ids=default_stop_ids(tok)))
    assert gen.done.wait(30)
    assert answer.choices[0].text == gen.text and answer.choices[0].finish_reason == gen.finish_reason
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (len(ids), len(gen.tokens))
    assert answer.usage.total_tokens == len(ids) + len(gen.tokens)
    by_hash = client(url).completions.create(model=f"legal@sha256:{a1.upper()}", prompt=PROMPT, max_tokens=12,
                                             temperature=0)
    latest = client(url).completions.create(model="legal", prompt=PROMPT, max_tokens=12, temperature=0)
    first = client(url).completions.create(model="legal@1", prompt=PROMPT, max_tokens=12, temperature=0)
    assert by_hash.model == latest.model == "legal@2" and by_hash.choices[0].text == answer.choices[0].text
    assert first.system_fingerprint is not None and adapter_hash(adapter_dirs["a0"]) in first.system_fingerprint


def test_streaming_equals_whole_answer(served: tuple[str, Stack]) -> None:
    url, _ = served
    c = client(url)
    whole = c.completions.create(model="news@1", prompt=PROMPT, max_tokens=20, temperature=0)
    parts = list(c.completions.create(model="news@1", prompt=PROMPT, max_tokens=20, temperature=0, stream=True))
    assert "".join(p.choices[0].text for p in parts) == whole.choices[0].text
    assert parts[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    messages: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello world"}]
    chat = c.chat.completions.create(model="tiny", messages=messages, max_tokens=16, temperature=0, seed=1)
    assert chat.choices[0].message.role == "assistant" and chat.usage is not None
    assert chat.usage.completion_tokens >= 1
    chunks = list(c.chat.completions.create(model="tiny", messages=messages, max_tokens=16, temperature=0,
                                            stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == chat.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump() == chat.usage.model_dump()
    with httpx.stream("POST", url + "/v1/completions", json={"model": "tiny", "prompt": PROMPT, "max_tokens": 3,
                                                              "stream": True}) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and r.headers["content-type"].startswith("text/event-stream")


def test_sampling_seed_and_stop(served: tuple[str, Stack]) -> None:
    url, _ = served
    c = client(url)

    def ask(**kw: Any) -> str:
        return c.completions.create(model="legal@2", prompt=PROMPT, max_tokens=24, **kw).choices[0].text

    assert ask(temperature=0.9, top_p=0.9, seed=3) == ask(temperature=0.9, top_p=0.9, seed=3)
    greedy = ask(temperature=0)
    assert len(greedy) > 4
    stop = greedy[2:4]
    cut = c.completions.create(model="legal@2", prompt=PROMPT, max_tokens=24, temperature=0, stop=[stop, "zzz"])
    assert cut.choices[0].finish_reason == "stop" and stop not in cut.choices[0].text
    assert greedy.startswith(cut.choices[0].text)
    streamed = c.completions.create(model="legal@2", prompt=PROMPT, max_tokens=24, temperature=0, stop=stop,
                                    stream=True)
    assert "".join(p.choices[0].text for p in streamed) == cut.choices[0].text


def _error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    err: dict[str, Any] = body["error"]
    return err


def test_errors_in_openai_shape(served: tuple[str, Stack]) -> None:
    url, stack = served
    c = client(url)
    with pytest.raises(openai.NotFoundError) as nf:
        c.completions.create(model="nobody", prompt=PROMPT, max_tokens=4)
    assert nf.value.code == "model_not_found" and nf.value.param == "model"

    def post(body: Any, path: str = "/v1/completions") -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(url + path, content=raw, headers={"content-type": "application/json"})

    ok = {"model": "tiny", "prompt": PROMPT, "max_tokens": 4}
    assert _error(post({**ok, "model": "legal@9"}), 404)["code"] == "model_version_not_found"
    assert "not served here" in _error(post({**ok, "model": "ghost"}), 404)["message"]
    assert _error(post({**ok, "model": "legal@3"}), 410)["code"] == "model_retired"
    assert _error(post({**ok, "model": "legal@x"}), 400)["code"] == "bad_model_ref"
    assert _error(post({**ok, "prompt": ""}), 400)["param"] == "prompt"
    too_long = _error(post({**ok, "max_tokens": stack.engine.context_length}), 400)
    assert too_long["param"] == "max_tokens" and too_long["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        c.completions.create(model="tiny", prompt=PROMPT, max_tokens=10_000)
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": ""}], max_tokens=4)
    assert _error(post(b'{"model": "tiny", "prompt":'), 400)["code"] == "invalid_json"
    assert _error(post({**ok, "n": 2}), 400)["param"] == "n"
    assert _error(post({**ok, "temperature": "hot"}), 400)["param"] == "temperature"
    assert _error(post({**ok, "stop": ["a", "b", "c", "d", "e"]}), 400)["param"] == "stop"
    assert _error(post({"model": "tiny"}, "/v1/chat/completions"), 400)["param"] == "messages"
    assert _error(httpx.get(url + "/v1/nothing"), 404)["type"] == "not_found_error"
    assert _error(httpx.post(url + "/v1/completions", content=b"x" * (2 << 20)), 413)["code"] == "request_too_large"


def test_overload_gets_429_with_retry_after(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    stack = make_stack(tiny_dir, adapter_dirs)
    with serving(stack, start=False, max_pending=1) as url:  # the engine waits: the first request stays pending
        first: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: first.update(
            r=client(url).completions.create(model="legal", prompt=PROMPT, max_tokens=5, temperature=0)))
        worker.start()
        deadline = time.monotonic() + 10
        while not stack.engine.has_work():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        r = httpx.post(url + "/v1/completions", json={"model": "tiny", "prompt": PROMPT, "max_tokens": 4})
        err = _error(r, 429)
        assert r.headers["retry-after"] == "1" and err["type"] == "rate_limit_error"
        with pytest.raises(openai.RateLimitError):
            client(url).completions.create(model="tiny", prompt=PROMPT, max_tokens=4)
        stack.engine.start()
        worker.join(30)
        assert first["r"].usage.completion_tokens >= 1
        again = client(url).completions.create(model="tiny", prompt=PROMPT, max_tokens=4)  # room again
        assert again.usage is not None and again.usage.completion_tokens >= 1


def test_client_disconnect_mid_stream_cancels(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    stack = make_stack(tiny_dir, adapter_dirs, slow_s=0.01)
    with serving(stack) as url:
        body = {"model": "tiny", "prompt": PROMPT, "max_tokens": 200, "temperature": 0, "stream": True}
        with httpx.Client(timeout=30) as http, http.stream("POST", url + "/v1/completions", json=body) as r:
            receipt = r.headers["x-ailedger-receipt-id"]
            seen = 0
            for line in r.iter_lines():
                seen += line.startswith("data: ")
                if seen == 3:
                    break
        deadline = time.monotonic() + 10
        while stack.engine.has_work():  # the row leaves the batch soon after the client goes away
            assert time.monotonic() < deadline, "the request kept running after its client left"
            time.sleep(0.01)
    record = stack.meter.find(receipt)
    assert record is not None and record.finish_reason == "cancelled"
    assert 3 <= record.completion_tokens < 200 and record.prompt_tokens >= 1
    assert record.adapter_hash is None and record.base_weights_hash == stack.base.info.weights_hash


def test_catalog_from_explicit_entries() -> None:
    base = ServedBase("b", "00" * 32)
    cat = Catalog(base, [ServedAdapter("x", 1, "11" * 32, Path("/x1")), ServedAdapter("x", 2, "22" * 32, None,
                                                                                        why_not="elsewhere")])
    assert cat.resolve("b").adapter is None and cat.resolve("x@1").adapter_id == "11" * 32
    assert [a.ref for a in cat.served()] == ["x@1"]
    with pytest.raises(Exception, match="not served here"):
        cat.resolve("x")  # the latest version is not here: never fall back to older weights silently


@contextmanager
def serve_command(args: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`ailedger serve ARGS` in a subprocess once it reports listening: (the process, its URL); killed if left."""
    env = {**env, "PYTHONUNBUFFERED": "1"}
    env.pop("AILEDGER_NODE", None)
    proc = subprocess.Popen([sys.executable, "-c", "from ailedger.cli.main import main; main()", "serve",
                             "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO,
                            env=env)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "ailedger serve did not report listening"
        line = proc.stdout.readline().decode().strip()
        assert line.startswith("listening on http://127.0.0.1:"), line
        yield proc, line.removeprefix("listening on ")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_serve_command_listens(tiny_dir: Path, adapter_dirs: dict[str, Path], tmp_path: Path) -> None:
    root = next(iter(adapter_dirs.values())).parent
    args = ["--base", str(tiny_dir), "--adapters", str(root), "--max-batch", "4"]
    with serve_command(args, {**os.environ, "AILEDGER_HOME": str(tmp_path)}) as (proc, url):
        assert [m.id for m in client(url).models.list()][:2] == [tiny_dir.name, "a0@1"]
        answer = client(url).completions.create(model="a1", prompt=PROMPT, max_tokens=5, temperature=0)
        assert answer.model == "a1@1" and answer.usage is not None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_every_error_code_of_the_api_is_in_the_ledgers_table() -> None:
    """The API's OpenAI-style codes are registered in core/errors.py like every other failure."""
    import re

    from ailedger.core import errors as codes

    src = Path(__file__).resolve().parents[1] / "src" / "ailedger" / "serving"
    text = "".join((src / f).read_text() for f in ("openai_api.py", "openai_params.py", "grounding.py"))
    used = set(re.findall(r'code="([a-z_]+)"', text))
    used |= set(re.findall(r'bad\((?:[^()]|\([^()]*\))*?,\s*(?:[^,()]+|None),\s*"([a-z_]+)"\)', text))
    used |= set(re.findall(r'"(context_length_exceeded|missing_required_parameter)"', text))
    used.add("invalid_value")  # the default of bad()
    assert len(used) >= 10
    missing = sorted(c for c in used if not any(e.name == c for e in codes.all_codes()))
    assert not missing, missing
