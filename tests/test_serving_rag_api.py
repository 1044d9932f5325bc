"""Retrieval with citations through the OpenAI-compatible API: the tiny model, a real embedded ledger.

The ledger holds a Datanet whose records two contributors staked, a validator accepted, and the
owner froze as version 1; the server's `Retriever` reads it through the CLI's `Embedded` backend, the
same calls `ailedger serve --node` makes over HTTP.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn

from ailedger.api.server import run_server_in_thread
from ailedger.chain.genesis import Allocation, Genesis
from ailedger.cli.backend import Embedded
from ailedger.core.keys import KeyPair
from ailedger.core.merkle import merkle_root
from ailedger.datanet import payloads as p
from ailedger.datanet.embedding import STATIC_NAME, default_cache_dir, static_embedder
from ailedger.datanet.gates.records import canonical_record, record_hash
from ailedger.factory.basemodel import load_base
from ailedger.modules import default_runtime
from ailedger.serving.catalog import Catalog
from ailedger.serving.grounding import INSTRUCTION, chat_with_sources
from ailedger.serving.retrieval import Hit, Retriever
from ailedger.serving.stack import Stack, build_stack, served_base
from tests.conftest import CHAIN_ID
from tests.conftest_api import make_chain, serve_in_thread
from tests.test_datanet_pipeline import C1, C2, OWNER, PARAMS, PROPOSER, UNIT, V1, create, send
from tests.test_serving_api import client, serve_command
from tests.test_serving_lora import tiny_dir

__all__ = ["tiny_dir"]

RARE = "A zyxquorbium rivet keeps the ledger flat."
TEXTS = [RARE, "The ledger records who contributed each record.", "Validators vote on the records of a datanet.",
         "Contributors are paid when their records are used.", "The quick brown fox jumps over the lazy dog.",
         "Every fee is split between owners and providers.", "A snapshot freezes the accepted records.",
         "The moon orbits the earth once a month.", "Bake the bread until the crust is brown.",
         "The striker scored in the last minute of the match."]
RECORDS = [{"text": t} for t in TEXTS]
ASK = "What keeps the ledger flat? zyxquorbium"


def contribute(backend: Embedded, key: KeyPair, records: list[dict[str, Any]]) -> None:
    hashes = [bytes.fromhex(h) for h in backend.put_blobs([canonical_record(r) for r in records])]
    send(backend, key, p.CONTRIBUTE, p.Contribute("kb", hashes, merkle_root(hashes)), p.CONTRIBUTE_CODEC)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    """Datanet `kb`: version 1 holds RECORDS (the first half from C1, the rest from C2); one record stays pending."""
    allocs = [Allocation(OWNER.address, 100 * UNIT), Allocation(C1.address, 100 * UNIT),
              Allocation(C2.address, 100 * UNIT), Allocation(V1.address, UNIT, 5 * UNIT)]
    genesis = Genesis(CHAIN_ID, 1_700_000_000_000, PROPOSER.public_key, allocs, PARAMS)
    backend = Embedded(make_chain(tmp_path_factory.mktemp("rag") / "data", genesis, default_runtime(), PROPOSER),
                       write=True)
    create(backend, "kb", window=1)
    send(backend, V1, p.REGISTER_VALIDATOR, p.Named("kb"), p.NAMED_CODEC)
    for key, part in ((C1, RECORDS[:5]), (C2, RECORDS[5:])):  # each voted on within its one-block window
        contribute(backend, key, part)
        pending = [bytes.fromhex(r["hash"]) for r in backend.datanet_pending("kb")["records"]]
        send(backend, V1, p.VOTE, p.VoteBatch("kb", [p.Ballot(h, 1) for h in pending]), p.VOTE_CODEC)
    send(backend, OWNER, p.SNAPSHOT, p.Named("kb"), p.NAMED_CODEC)
    assert backend.datanet("kb")["versions"][0]["count"] == len(RECORDS)
    contribute(backend, C1, [{"text": "A zyxquorbium record nobody voted on yet."}])
    yield backend
    backend.close()


@contextmanager
def servers(stack: Stack, **apps: dict[str, Any]) -> Iterator[dict[str, str]]:
    """One uvicorn server per app option set, all over `stack` (started once); yields their URLs by name."""
    stack.start()
    try:
        with ExitStack() as scope:
            urls = {}
            for name, options in apps.items():
                server = uvicorn.Server(uvicorn.Config(stack.app(**options), log_level="warning", access_log=False,
                                                       lifespan="off", timeout_graceful_shutdown=2))
                urls[name] = scope.enter_context(run_server_in_thread(server))
            yield urls
    finally:
        stack.close()


@pytest.fixture(scope="module")
def served(tiny_dir: Path, ledger: Embedded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str],
                                                                                                       Stack]]:
    base = load_base(tiny_dir)
    stack = build_stack(base, Catalog(served_base(base)), max_batch=4)
    retriever = Retriever(ledger, tmp_path_factory.mktemp("cache"), static_embedder(default_cache_dir()))
    with servers(stack, rag={"retriever": retriever}, plain={}) as urls:
        yield urls, stack


def rag(k: int = 2, **kw: Any) -> dict[str, Any]:
    return {"rag": {"datanet": "kb", "version": 1, "k": k, **kw}}


def test_chat_cites_accepted_records(served: tuple[dict[str, str], Stack], ledger: Embedded) -> None:
    urls, stack = served
    c = client(urls["rag"])
    messages: Any = [{"role": "user", "content": ASK}]
    raw = c.chat.completions.with_raw_response.create(model="tiny", messages=messages, max_tokens=4, temperature=0,
                                                      extra_body=rag())
    answer = raw.parse()
    extra = (answer.model_extra or {})["ailedger"]
    cites = extra["citations"]
    accepted = set(ledger.datanet_version("kb", 1)["hashes"])
    assert raw.headers["x-ailedger-citations"] == "2" and [x["index"] for x in cites] == [1, 2]
    assert cites[0]["record"] == record_hash({"text": RARE}).hex() and {x["record"] for x in cites} <= accepted
    for x in cites:
        assert x["datanet"] == "kb" and x["version"] == 1 and x["score"] > 0
        assert x["contributor"] == ledger.datanet_record("kb", x["record"])["contributor"]
    assert cites[0]["contributor"] == C1.address_text
    plain = c.chat.completions.create(model="tiny", messages=messages, max_tokens=4, temperature=0)
    assert answer.usage is not None and plain.usage is not None
    assert answer.usage.prompt_tokens > plain.usage.prompt_tokens + 20  # the sources are in the prompt
    record = stack.meter.find(extra["receipt_id"])
    assert record is not None and record.citations == tuple(x["record"] for x in cites)
    assert record.prompt_tokens == answer.usage.prompt_tokens
    plain_record = stack.meter.find((plain.model_extra or {})["ailedger"]["receipt_id"])
    assert plain_record is not None and plain_record.citations == ()
    assert "citations" not in (plain.model_extra or {})["ailedger"]


def test_streaming_carries_citations_on_the_last_chunk(served: tuple[dict[str, str], Stack]) -> None:
    c = client(served[0]["rag"])
    messages: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": ASK}]
    whole = c.chat.completions.create(model="tiny", messages=messages, max_tokens=6, temperature=0, extra_body=rag())
    chunks = list(c.chat.completions.create(model="tiny", messages=messages, max_tokens=6, temperature=0, stream=True,
                                            stream_options={"include_usage": True}, extra_body=rag()))
    cites = (whole.model_extra or {})["ailedger"]["citations"]
    last = next(ch for ch in chunks if ch.choices and ch.choices[0].finish_reason)
    assert (last.model_extra or {})["ailedger"]["citations"] == cites
    middle = [ch for ch in chunks if ch.choices and not ch.choices[0].finish_reason]
    assert middle and all("ailedger" not in (ch.model_extra or {}) for ch in middle)
    assert chunks[-1].usage is not None and whole.usage is not None
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_completion_with_rag(served: tuple[dict[str, str], Stack]) -> None:
    url = served[0]["rag"]
    body = {"model": "tiny", "prompt": ASK, "max_tokens": 3, "temperature": 0}
    grounded = httpx.post(url + "/v1/completions", json={**body, **rag(3)}, timeout=30).json()
    plain = httpx.post(url + "/v1/completions", json=body, timeout=30).json()
    assert len(grounded["ailedger"]["citations"]) == 3
    assert grounded["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"]
    ids = httpx.post(url + "/v1/completions", json={**body, "prompt": [5, 6, 7], **rag()}, timeout=30)
    assert ids.status_code == 400 and ids.json()["error"]["param"] == "prompt"


def test_sources_that_do_not_fit_are_dropped(served: tuple[dict[str, str], Stack]) -> None:
    urls, stack = served
    context = stack.engine.context_length
    body = {"model": "tiny", "messages": [{"role": "user", "content": ASK}], "temperature": 0, **rag(16)}
    everything = httpx.post(urls["rag"] + "/v1/chat/completions", json={**body, "max_tokens": 2}, timeout=30).json()
    cited = len(everything["ailedger"]["citations"])
    assert 2 <= cited < len(RECORDS) and everything["usage"]["prompt_tokens"] + 2 <= context
    tighter = httpx.post(urls["rag"] + "/v1/chat/completions", json={**body, "max_tokens": 100}, timeout=30)
    fewer = tighter.json()["ailedger"]["citations"]
    assert len(fewer) < cited and fewer == everything["ailedger"]["citations"][:len(fewer)]
    assert tighter.json()["usage"]["prompt_tokens"] + 100 <= context
    assert tighter.headers["x-ailedger-citations"] == str(len(fewer))
    none_fit = httpx.post(urls["rag"] + "/v1/chat/completions", json={**body, "max_tokens": context - 40}, timeout=30)
    assert none_fit.status_code == 200 and none_fit.json()["ailedger"]["citations"] == []
    assert none_fit.headers["x-ailedger-citations"] == "0"


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"}
    err: dict[str, Any] = r.json()["error"]
    return err


def test_bad_rag_requests(served: tuple[dict[str, str], Stack]) -> None:
    urls, _ = served
    chat = {"model": "tiny", "messages": [{"role": "user", "content": ASK}], "max_tokens": 2}

    def post(extra: Any, url: str = urls["rag"]) -> httpx.Response:
        return httpx.post(url + "/v1/chat/completions", content=json.dumps({**chat, **extra}),
                          headers={"content-type": "application/json"}, timeout=30)

    missing = error(post({"rag": {"datanet": "nope", "version": 1}}), 404)
    assert (missing["code"], missing["param"], missing["type"]) == ("datanet_not_found", "rag.datanet",
                                                                    "not_found_error")
    assert error(post(rag(version=2)), 404)["param"] == "rag.version"
    with pytest.raises(openai.NotFoundError) as nf:
        client(urls["rag"]).chat.completions.create(model="tiny", messages=chat["messages"], max_tokens=2,
                                                    extra_body=rag(version=9))
    assert nf.value.code == "version_not_found"
    cases: list[tuple[Any, str, str]] = [
        ("kb", "rag", "invalid_type"), ({"version": 1}, "rag.datanet", "missing_required_parameter"),
        ({"datanet": "kb"}, "rag.version", "missing_required_parameter"), ({"datanet": 5, "version": 1}, "rag.datanet",
                                                                           "invalid_type"),
        ({"datanet": "kb", "version": "1"}, "rag.version", "invalid_type"),
        ({"datanet": "kb", "version": 0}, "rag.version", "invalid_value"),
        ({"datanet": "kb", "version": 1, "k": 0}, "rag.k", "invalid_value"),
        ({"datanet": "kb", "version": 1, "k": 17}, "rag.k", "invalid_value"),
        ({"datanet": "kb", "version": 1, "k": True}, "rag.k", "invalid_type"),
        ({"datanet": "kb", "version": 1, "top": 3}, "rag.top", "unsupported_parameter"),
    ]
    for shape, param, code in cases:
        err = error(post({"rag": shape}), 400)
        assert (err["param"], err["code"]) == (param, code), shape
    no_user = error(post({"messages": [{"role": "system", "content": "hi"}], **rag()}), 400)
    assert no_user["param"] == "messages"
    plain = error(post(rag(), urls["plain"]), 400)
    assert plain["param"] == "rag" and plain["code"] == "unsupported_parameter" and "--node" in plain["message"]
    with pytest.raises(openai.BadRequestError):
        client(urls["plain"]).chat.completions.create(model="tiny", messages=chat["messages"], max_tokens=2,
                                                      extra_body=rag())


def test_sources_merge_into_the_first_system_message() -> None:
    hit = Hit("ab" * 32, 1, 0.5, "al1x", "source text")
    user = {"role": "user", "content": "q"}
    merged = chat_with_sources([{"role": "system", "content": "Be brief."}, user], [hit])
    assert len(merged) == 2 and merged[0]["content"].startswith("Be brief.\n\n" + INSTRUCTION)
    assert merged[0]["content"].endswith("[1] source text") and merged[1] == user
    added = chat_with_sources([user], [hit])
    assert [m["role"] for m in added] == ["system", "user"] and chat_with_sources([user], []) == [user]


def test_serve_with_node_answers_with_citations(tiny_dir: Path, ledger: Embedded, tmp_path: Path) -> None:
    """`ailedger serve --node URL`: the catalog and the retriever read the node over HTTP for the server's life."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / STATIC_NAME).symlink_to(default_cache_dir() / STATIC_NAME)  # the distilled embedder, not its rag files
    env = {**os.environ, "AILEDGER_HOME": str(tmp_path), "AILEDGER_CACHE": str(cache)}
    with serve_in_thread(ledger.node) as node_url, serve_command(
            ["--base", str(tiny_dir), "--node", node_url, "--free", "--max-batch", "2"], env) as (proc, url):
        messages: Any = [{"role": "user", "content": ASK}]
        answer = client(url).chat.completions.create(model=tiny_dir.name, messages=messages, max_tokens=2,
                                                     extra_body=rag())
        cites = (answer.model_extra or {})["ailedger"]["citations"]
        assert cites[0]["record"] == record_hash({"text": RARE}).hex()
        assert cites[0]["contributor"] == C1.address_text
        assert len(list((cache / "rag").glob("*.jsonl"))) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
