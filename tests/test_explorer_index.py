"""The explorer's history index and page pieces, checked against the chain the demo made.

The history index replays the blocks; what it sums must equal what the ledger says by other roads
(the store's transactions, settlement's earnings, billing's receipts). The answer's highlighting is
checked on a record with overlapping verbatim spans, rendered through the real template, because
the tiny model's answers in the demo copy nothing verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from ailedger.billing.service import receipt_json
from ailedger.chain.accounts import TRANSFER, TRANSFER_CODEC, Transfer
from ailedger.chain.node import Node
from ailedger.chain.tx import decode_tx, sign_tx
from ailedger.core.address import decode_address
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.datanet.service import datanet_json
from ailedger.modules import default_runtime
from ailedger.reputation import module as reputation
from ailedger.reputation.module import Role
from ailedger.web.app import environment
from ailedger.web.chain_pages import parse_cursor
from ailedger.web.data_pages import highlighted
from ailedger.web.history import History, tx_addresses
from ailedger.web.search import find
from tests.conftest import CHAIN_ID
from tests.datanet_sim import FEE
from tests.explorer_world import DemoWorld, demo_world

pytestmark = pytest.mark.timeout(900)  # the first test also waits for the demo


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> DemoWorld:
    return demo_world(tmp_path_factory)


@pytest.fixture(scope="module")
def demo_node(world: DemoWorld) -> Iterator[Node]:
    n = Node(world.data, default_runtime())
    yield n
    n.close()


@pytest.fixture(scope="module")
def history(demo_node: Node) -> History:
    h = History(demo_node.store, demo_node.runtime)
    h.catch_up()
    return h


def test_history_agrees_with_the_ledger(world: DemoWorld, demo_node: Node, history: History) -> None:
    top = demo_node.store.height()
    assert history.height == top and history.state().root() == demo_node.state.root()  # the replay reached the head
    rows = history.blocks(None, top + 5)
    assert [r.height for r in rows] == list(range(top, 0, -1))
    assert sum(r.txs for r in rows) == sum(len(demo_node.store.block(h).txs) for h in range(1, top + 1))
    people = {p["person"]: p for p in world.summary["people"]}
    honest = [n for n, p in people.items() if p["records"] == {"accepted": 6}]
    assert len(honest) == 3
    assert sum(r.data_paid for r in rows) == sum(people[n]["earned"] for n in honest) > 0  # contributors earn only data
    fees = sum(a["fee"] for a in world.summary["answers"])
    assert history.top_models(5) == [("atlas-lora@1", len(world.summary["answers"]), fees)]
    counts = datanet_json(demo_node.state, top, "atlas")["counts"]
    seen = sum(v for k, v in counts.items() if k not in ("versions", "contributors"))
    assert history.top_datanets(5) == [("atlas", seen, sum(r.data_paid for r in rows))]


def test_history_pages_by_keyset(demo_node: Node, history: History) -> None:
    first = history.blocks(None, 10)
    second = history.blocks(first[-1].height, 10)
    assert second[0].height == first[-1].height - 1 and len(second) == 10
    records = history.records("atlas", -1, 7)
    rest = history.records("atlas", records[-1][0], 100)
    assert [n for n, _, _ in records + rest] == list(range(len(records) + len(rest)))
    assert len({h for _, h, _ in records + rest}) == len(records) + len(rest)
    for _, h, _ in records:
        assert history.record_datanet(h) == "atlas"


def test_account_history_and_reputation(world: DemoWorld, demo_node: Node, history: History) -> None:
    rid = world.summary["answers"][0]["receipt_id"]
    caller = decode_address(receipt_json(demo_node.state, demo_node.store.height(), rid)["caller"])
    mine = history.account_txs(caller, None, 100)
    assert mine and mine == sorted(mine, reverse=True)
    for h, pos in mine:  # each one is really this account's: it signed it or the payload names it
        assert caller in tx_addresses(demo_node.runtime, decode_tx(demo_node.store.block(h).txs[pos]))
    assert history.account_txs(caller, mine[-1], 100) == []  # nothing before the oldest
    assert history.account_txs(caller, mine[0], 100) == mine[1:]  # the cursor row itself is not repeated
    top = demo_node.store.height()
    for c in datanet_json(demo_node.state, top, "atlas")["contributors"]:
        address = decode_address(c["address"])
        assert Role.CONTRIBUTOR in history.reputation_roles(address)
        h, score = history.reputation(address, Role.CONTRIBUTOR)[-1]
        assert score == reputation.score_bps(demo_node.state, address, Role.CONTRIBUTOR, h)  # the last change


def test_search_resolves_each_kind(world: DemoWorld, demo_node: Node, history: History) -> None:
    rid = world.summary["answers"][0]["receipt_id"]
    assert find(rid, demo_node.state, demo_node.store, history) == f"/answers/{rid}"
    assert find("atlas", demo_node.state, demo_node.store, history) == "/datanets/atlas"
    assert find(" 3 ", demo_node.state, demo_node.store, history) == "/blocks/3"
    for bad in ("", "x" * 300, "99999999", "al1qqqq", "f" * 64, "no such name"):
        with pytest.raises(LedgerError):
            find(bad, demo_node.state, demo_node.store, history)


def test_cursors_are_checked() -> None:
    assert parse_cursor(None, 1) is None and parse_cursor("12.3", 2) == (12, 3)
    for bad in ("x", "1.2.3", "-1", "1" * 30, "1."):
        with pytest.raises(LedgerError, match="cursor"):
            parse_cursor(bad, 2 if "." in bad else 1)


def test_spans_are_highlighted_and_linked_to_their_records() -> None:
    tokens = list(range(10))
    spans = [{"start": 2, "end": 5, "records": ["aa" * 32, "bb" * 32], "record_count": 2, "count": 3},
             {"start": 4, "end": 7, "records": ["cc" * 32], "record_count": 1, "count": 1}]
    segs = highlighted(tokens, spans, lambda ids: "".join(f"<{i}>" for i in ids))
    assert [s["text"] for s in segs] == ["<0><1>", "<2><3><4>", "<5><6>", "<7><8><9>"]
    assert [s.get("span") for s in segs] == [None, 0, 1, None]  # an overlapped token stays with the first span
    record = {"spans": spans, "records": [], "shares": [], "rule": {"floor": 0.5, "top_k": 16, "span_weight": 1.0},
              "method": "m", "bundle_root": "00"}
    receipt = {"id": "ab" * 32, "model": "m", "version": 1, "adapter_hash": "0" * 64, "base_hash": "0" * 64,
               "caller": "al1x", "provider": "al1y", "prompt_tokens": 1, "completion_tokens": 10, "fee": 1, "price": 1,
               "charged": 1, "status": "charged", "settled": False, "height": 1, "tx_id": "0" * 64,
               "attribution": "0" * 64}
    html = environment().get_template("answer.html").render(
        receipt=receipt, a=record, datanet="atlas", prompt="<b>hi</b>", segments=segs, shares=[], split=[],
        title="t", chain_id="c")
    marks = re.findall(r'<mark class="span" data-span="(\d)"><a href="([^"]+)"', html)
    assert marks == [("0", "/datanets/atlas/records/" + "aa" * 32),
                                             ("1", "/datanets/atlas/records/" + "cc" * 32)]
    assert "&lt;2&gt;&lt;3&gt;&lt;4&gt;" in html and "<b>hi</b>" not in html  # text is escaped, never markup
    assert html.count('data-span-record="') == 3  # every record of every span is listed and linked


def test_node_app_serves_the_explorer_beside_its_api_on_a_fresh_chain(node: Node) -> None:
    """`node run --explorer`: the pages under /, the JSON API unchanged under /v1, on a chain of genesis only."""
    from fastapi.testclient import TestClient

    from ailedger.api.server import make_config
    from ailedger.web.app import add_explorer

    client = TestClient(make_config(node, extend=add_explorer).app)
    home = client.get("/")
    assert home.status_code == 200 and "No blocks after genesis yet" in home.text
    assert client.get("/blocks/0").status_code == 200 and client.get("/blocks").status_code == 200
    assert client.get("/search", params={"q": "0"}, follow_redirects=False).headers["location"] == "/blocks/0"
    assert client.get("/v1/status").json()["height"] == 0
    missing = client.get("/v1/no-such-route")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"  # the API's shape
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert client.get("/blocks?before=x").status_code == 400


def test_a_big_block_is_shown_a_page_at_a_time(node: Node, users: list[KeyPair]) -> None:
    from fastapi.testclient import TestClient

    from ailedger.api.app import create_app
    from ailedger.web.app import add_explorer

    for i in range(30):  # 30 transfers in one block: a page of 25, then 5
        sender, to = users[i % 5], users[(i + 1) % 5]
        node.submit(sign_tx(sender, CHAIN_ID, i // 5, FEE, TRANSFER, TRANSFER_CODEC.encode(Transfer(to.address, 1))))
    sealed = node.produce_block()
    assert sealed is not None and sealed.header.tx_count == 30
    app = create_app(node)
    add_explorer(app, node)
    client = TestClient(app)
    first = client.get("/blocks/1")
    positions = [int(p) for p in re.findall(r'<h3 id="tx-(\d+)">', first.text)]
    assert positions == list(range(25)) and 'href="/blocks/1?after=24"' in first.text
    second = client.get("/blocks/1", params={"after": "24"})
    assert [int(p) for p in re.findall(r'<h3 id="tx-(\d+)">', second.text)] == list(range(25, 30))
    assert 'rel="next"' not in second.text.split("Transactions", 1)[1]  # the last page has no next link
    assert client.get("/blocks/1", params={"after": "x"}).status_code == 400


def test_lifetime_earnings_per_datanet_and_model_add_up_to_settlement(demo_node: Node, history: History) -> None:
    from ailedger.settlement.state import account_addresses, get_earnings

    paid = account_addresses(demo_node.state)
    assert len(paid) >= 5  # contributors, the model owner, the provider, validators
    for address in paid:
        e = get_earnings(demo_node.state, address)
        for kind in ("datanet", "model"):
            rows = history.earnings(address, kind).values()
            assert sum(r["amount"] for r in rows) == e.earned and sum(r["held"] for r in rows) == e.vested
