"""The explorer in a real browser: Playwright driving Debian's chromium against a demo-made chain.

What a reader does is what is checked: every page loads without a console error, the search box
finds each kind of object, an answer's records and verbatim spans link to the records they name, the account
page's proof check passes on the true answer and fails when one byte of the server's answer is
changed on the way (Playwright's route), lists page forward with keyset cursors, the keyboard
alone reaches the search box, and the playground streams an answer from a real `ailedger serve`.
Chromium missing is a failure saying to run `make test`, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from bench.explorer import build
from playwright.sync_api import Browser, Page, Route

from ailedger.api.app import create_app
from ailedger.api.server import run_server_in_thread
from ailedger.billing.service import receipt_json as billing_receipt
from ailedger.chain.node import Node
from ailedger.chain.tx import sign_tx
from ailedger.core.keys import KeyPair
from ailedger.datanet import payloads as dp
from ailedger.modules import default_runtime
from ailedger.web.app import add_explorer, remote_app
from ailedger.web.source import RemoteNode
from tests.conftest import CHAIN_ID
from tests.datanet_sim import FEE, contribute, create
from tests.explorer_world import EXE, Served, browser, demo_world, page, serve_explorer

__all__ = ["browser", "page"]  # the fixtures, shared with test_explorer_governance

pytestmark = pytest.mark.timeout(900)  # the first test also waits for the demo (minutes on a busy machine)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve_explorer(demo_world(tmp_path_factory))



def api(served: Served, path: str) -> Any:
    resp = httpx.get(served.url + path, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def receipt_ids(served: Served) -> list[str]:
    return [a["receipt_id"] for a in served.world.summary["answers"]]


def watch(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    return problems


def test_every_page_loads_without_console_errors(served: Served, page: Page) -> None:
    receipt = api(served, f"/v1/billing/receipts/{receipt_ids(served)[0]}")
    record = receipt["shares"][0]["record"]
    pages = ["/", "/blocks", "/blocks/1", f"/blocks/{served.world.summary['height']}", f"/txs/{receipt['tx_id']}",
             f"/accounts/{receipt['caller']}", f"/accounts/{receipt['provider']}", "/datanets/atlas",
             f"/datanets/atlas/records/{record}", "/models/atlas-lora@1", f"/answers/{receipt['id']}", "/playground"]
    problems = watch(page)
    for path in pages:
        resp = page.goto(served.url + path)
        assert resp is not None and resp.status == 200, path
        assert page.locator("h1").first.is_visible(), path
        page.wait_for_load_state("networkidle")
        assert not problems, f"{path}: {problems}"
    page.goto(served.url + "/")
    assert page.locator("#chart-txs canvas").count() == 1  # the vendored uPlot drew the chart
    assert page.locator("#height").text_content() == str(served.world.summary["height"])


def test_search_finds_each_kind_of_object(served: Served, page: Page) -> None:
    rid = receipt_ids(served)[0]
    receipt = api(served, f"/v1/billing/receipts/{rid}")
    block = api(served, "/v1/blocks/3")["header"]
    record = receipt["shares"][0]["record"]
    cases = {receipt["caller"]: f"/accounts/{receipt['caller']}", "7": "/blocks/7", block["hash"]: "/blocks/3",
             receipt["tx_id"]: f"/txs/{receipt['tx_id']}", rid: f"/answers/{rid}",
             record: f"/datanets/atlas/records/{record}", "atlas": "/datanets/atlas",
             "atlas-lora": "/models/atlas-lora%401", "atlas-lora@1": "/models/atlas-lora%401"}
    for query, target in cases.items():
        page.goto(served.url + "/")
        page.fill("#q", query)
        page.press("#q", "Enter")
        page.wait_for_url(served.url + target)
        assert page.locator("h1").first.is_visible()
    page.fill("#q", "no-such-thing")
    page.press("#q", "Enter")
    page.wait_for_load_state()
    assert "nothing is called 'no-such-thing'" in (page.text_content("main") or "")


def test_answer_page_links_spans_and_records_to_the_right_records(served: Served, page: Page) -> None:
    problems = watch(page)
    for rid in receipt_ids(served):
        receipt = api(served, f"/v1/billing/receipts/{rid}")
        record = json.loads(httpx.get(f"{served.url}/v1/blobs/{receipt['attribution']}").content)
        page.goto(f"{served.url}/answers/{rid}")
        links = page.locator("a[data-top-record]")
        shown = [links.nth(i).get_attribute("href") for i in range(links.count())]
        assert shown == [f"/datanets/atlas/records/{r['record']}" for r in record["records"]]
        paid = {s["record"] for s in receipt["shares"]}
        assert paid == {r["record"] for r in record["records"] if r["paid"]}
        marks = page.locator("#answer-text mark.span a")
        expected = [f"/datanets/atlas/records/{sp['records'][0]}" for sp in record["spans"] if sp["records"]]
        assert [marks.nth(i).get_attribute("href") for i in range(marks.count())] == expected
        if not record["spans"]:
            assert "No part of this answer occurs verbatim" in (page.text_content("main") or "")
        bars = page.locator("ul.bars li")
        assert bars.count() == max(1, len(record["shares"]))
    page.locator("a[data-top-record]").first.click()
    page.wait_for_url(re.compile(r".*/datanets/atlas/records/[0-9a-f]{64}$"))
    assert "accepted" in (page.text_content("main") or "")
    page.goto(f"{served.url}/txs/{receipt['tx_id']}")  # the submit_receipts transaction links its answers
    page.locator(f"a[href='/answers/{rid}']").click()
    page.wait_for_url(f"{served.url}/answers/{rid}")
    assert not problems


def test_reverify_button_recomputes_the_attribution(served: Served, page: Page) -> None:
    page.goto(f"{served.url}/answers/{receipt_ids(served)[0]}")
    page.click("#verify")
    result = page.locator("#verify-result[data-state=ok], #verify-result[data-state=fail]")
    result.wait_for(timeout=55_000)
    assert result.get_attribute("data-state") == "ok", result.text_content()
    assert "recomputed" in (result.text_content() or "")
    assert page.locator("#verify-checks li").count() >= 3


def _proof_state(page: Page) -> tuple[str, str]:
    done = page.locator("#proof-result[data-state=ok], #proof-result[data-state=fail]")
    done.wait_for()
    return str(done.get_attribute("data-state")), str(done.text_content())


def test_proof_check_passes_for_the_true_account_and_fails_when_tampered(served: Served, page: Page) -> None:
    address = api(served, f"/v1/billing/receipts/{receipt_ids(served)[0]}")["caller"]
    page.goto(f"{served.url}/accounts/{address}")
    state, text = _proof_state(page)
    assert state == "ok", text
    assert "Verified" in text and page.locator("#proof-steps li").count() >= 2

    def flip_one_byte(route: Route, where: str) -> None:
        body = route.fetch().json()
        proof = body["proof"]
        if where == "sibling":
            s = proof["proof"]["siblings"][0]
            proof["proof"]["siblings"][0] = ("0" if s[0] != "0" else "1") + s[1:]
        else:
            proof["account"]["balance"] ^= 1
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    for where in ("sibling", "balance"):
        tampered = page.context.new_page()
        tampered.route("**/v1/accounts/*", lambda route, where=where: flip_one_byte(route, where))
        tampered.goto(f"{served.url}/accounts/{address}")
        state, text = _proof_state(tampered)
        assert state == "fail" and "FAILED" in text, (where, text)
        tampered.close()


def _column(page: Page, table: str, col: int) -> list[str]:
    cells = page.locator(f"{table} tbody tr td:nth-child({col})")
    return [str(cells.nth(i).text_content()).strip() for i in range(cells.count())]


def test_lists_page_with_keyset_cursors(served: Served, page: Page) -> None:
    top = int(served.world.summary["height"])
    page.goto(served.url + "/blocks")
    seen: list[int] = []
    while True:
        seen += [int(h) for h in _column(page, "table", 1)]
        nxt = page.locator("a[rel=next]")
        if not nxt.count():
            break
        nxt.click()
        page.wait_for_load_state()
    assert seen == list(range(top, 0, -1))  # every block once, newest first, across pages

    counts = api(served, "/v1/datanets/atlas")["counts"]
    total = sum(v for k, v in counts.items() if k != "versions" and k != "contributors")
    page.goto(served.url + "/datanets/atlas")
    records: list[str] = []
    while True:
        records += _column(page, "table.records", 1)
        nxt = page.locator("nav.pager a[rel=next][href*='after=']:not([href*='contributors_after'])")
        if not nxt.count():
            break
        nxt.click()
        page.wait_for_load_state()
    assert records == [str(i) for i in range(1, total + 1)]
    page.goto(served.url + "/blocks?before=not-a-cursor")
    assert "cursor" in (page.text_content("main") or "")


def test_keyboard_alone_reaches_the_search_box(served: Served, page: Page) -> None:
    page.goto(served.url + "/")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "q":
            break
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("atlas")
    page.keyboard.press("Enter")
    page.wait_for_url(served.url + "/datanets/atlas")
    assert page.locator("label[for=q]").count() == 1


def test_bad_input_gets_a_page_that_says_what_was_wrong_and_runs_no_script(served: Served, page: Page) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    cases = {"/blocks/abc": 400, "/blocks/99999": 404, "/txs/xyz": 400, f"/answers/{'0' * 64}": 404,
             "/accounts/al1nothing": 400, "/datanets/nowhere": 404, "/models/nowhere": 404, "/no/such/page": 404}
    for path, status in cases.items():
        resp = page.goto(served.url + path)
        assert resp is not None and resp.status == status, path
        assert page.locator("p.error").is_visible(), path
    page.goto(served.url + "/search?q=" + "%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert page.locator("#q").input_value() == "<script>alert(1)</script>"  # shown back as text
    assert "<script>alert(1)</script>" in (page.text_content("p.error") or "")
    assert not dialogs


@pytest.fixture(scope="module")
def serving(served: Served) -> Iterator[str]:
    """`ailedger serve` on the tiny base with the demo's adapter (no billing), as a child process."""
    world = served.world
    env = {**os.environ, "AILEDGER_KDF_COST": "test", "CI": "true"}
    proc = subprocess.Popen([str(EXE), "--home", str(world.root / "serving-home"), "serve", "--base", str(world.tiny),
                             "--adapters", str(world.adapter.parent), "--port", "0", "--no-attribution"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
                            env=env)
    try:
        assert proc.stdout is not None
        line = ""
        deadline = time.monotonic() + 120
        while "listening on" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
        assert "listening on" in line, "the serving server did not start"
        yield line.split("listening on", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(30)


def test_playground_streams_an_answer_and_links_its_page(served: Served, serving: str, page: Page) -> None:
    problems = watch(page)
    page.goto(f"{served.url}/playground?server={serving}")
    assert page.locator("#server").input_value() == serving
    page.fill("#key", "alk_not-needed-by-a-free-server")
    page.select_option("#model", "atlas-lora@1")
    page.fill("#prompt", "Who keeps the ledger of Vellmar?")
    page.evaluate("""() => { window.__chunks = 0;
        new MutationObserver(() => { window.__chunks += 1; })
          .observe(document.getElementById("stream"), {childList: true, characterData: true, subtree: true}); }""")
    page.click("#ask button[type=submit]")
    link = page.locator("#stream-status a")
    link.wait_for(timeout=55_000)
    assert re.fullmatch(r"/answers/[0-9a-f]{64}", str(link.get_attribute("href")))
    assert (page.text_content("#stream") or "").strip()
    assert page.evaluate("window.__chunks") >= 2  # the answer arrived in pieces, not at once
    assert not problems


def test_script_in_a_record_and_a_topic_is_shown_as_text_and_never_runs(node: Node, users: list[KeyPair],
                                                                        browser: Browser) -> None:
    """Stored input (a Datanet's topic, a record's content) is whoever's text: escaped, never markup."""
    topic = "<script>alert('topic')</script>"
    content = "<script>alert('record')</script><img src=x onerror=alert('img')>"
    record = bytes.fromhex(node.put_blobs([json.dumps({"text": content}).encode()])[0])
    me = users[0]
    for nonce, (kind, codec, payload) in enumerate([(dp.CREATE, dp.CREATE_CODEC, create("xss", window=10, topic=topic)),
                                                   (dp.CONTRIBUTE, dp.CONTRIBUTE_CODEC, contribute("xss", [record]))]):
        tx_id = node.submit(sign_tx(me, CHAIN_ID, nonce, FEE, kind, codec.encode(payload)))["tx_id"]
        node.produce_block()
        assert node.tx(tx_id)["receipt"]["ok"]
    app = create_app(node)
    add_explorer(app, node)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    with run_server_in_thread(server) as url:
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{url}/datanets/xss")
        assert topic in (page.text_content("main") or "")
        page.click(f"a[href='/datanets/xss/records/{record.hex()}']")
        page.wait_for_load_state("networkidle")
        assert content in (page.text_content("pre.record-text") or "")
        assert page.locator("main img").count() == 0 and not dialogs
        page.close()


def test_verbatim_spans_are_highlighted_and_link_to_their_records(tmp_path: Path, browser: Browser) -> None:
    """A chain whose receipts carry an attribution record with a verbatim span (the benchmark's chain,
    small): the demo's tiny model copies nothing verbatim, so its answers have no span to show."""
    ids = build(tmp_path, 0, 1_000, 100)
    node = Node(tmp_path / "data", default_runtime())
    try:
        receipt = billing_receipt(node.state, node.store.height(), ids["receipt"])
        record = json.loads(node.get_blob(receipt["attribution"]))
        span_record = record["spans"][0]["records"][0]
        app = create_app(node)
        add_explorer(app, node)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        with run_server_in_thread(server) as url:
            page = browser.new_page()
            problems = watch(page)
            page.goto(f"{url}/answers/{ids['receipt']}")
            marks = page.locator("#answer-text mark.span")
            assert marks.count() == 1 and marks.first.text_content() == "6 7"  # tokens 1..3 of 5 6 7 8
            assert marks.locator("a").get_attribute("href") == f"/datanets/facts/records/{span_record}"
            listed = page.locator("ul.spans a[data-span-record]")
            assert [listed.nth(i).get_attribute("data-span-record") for i in range(listed.count())] == [span_record]
            marks.locator("a").click()
            page.wait_for_url(f"{url}/datanets/facts/records/{span_record}")
            assert "accepted" in (page.text_content("main") or "")
            assert not problems
            page.close()
    finally:
        node.close()


def test_explorer_over_a_running_node_reads_it_over_http(served: Served, browser: Browser, tmp_path: Path) -> None:
    """`ailedger explorer --node URL`: the pages and the proof check, against a `node run` in another process."""
    data = tmp_path / "data"
    shutil.copytree(served.world.data, data, ignore=shutil.ignore_patterns("writer.lock"))
    env = {**os.environ, "AILEDGER_KDF_COST": "test", "CI": "true"}
    proc = subprocess.Popen([str(EXE), "node", "run", "--data-dir", str(data), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, "the node did not start"
        remote = RemoteNode(line.split("listening on", 1)[1].strip(), default_runtime())
        server = uvicorn.Server(uvicorn.Config(remote_app(remote), log_level="warning", access_log=False,
                                               lifespan="off"))
        rid = receipt_ids(served)[0]
        with run_server_in_thread(server) as url:
            assert remote.history.height == served.world.summary["height"] and remote.history.stopped is None
            page = browser.new_page()
            problems = watch(page)
            page.goto(url + "/")
            assert page.locator("#height").text_content() == str(served.world.summary["height"])
            address = api(served, f"/v1/billing/receipts/{rid}")["caller"]
            page.goto(f"{url}/accounts/{address}")
            state, text = _proof_state(page)
            assert state == "ok", text
            block = api(served, "/v1/blocks/3")["header"]["hash"]
            for query, target in ((rid, f"/answers/{rid}"), (block, "/blocks/3"), ("atlas", "/datanets/atlas")):
                page.goto(f"{url}/search?q={query}")
                assert page.url == url + target
            assert page.locator("table.records tbody tr").count() == 25
            assert not problems
            page.close()
        remote.close()
    finally:
        proc.terminate()
        proc.wait(30)
