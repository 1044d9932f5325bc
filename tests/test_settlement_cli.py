"""`ailedger earnings` and `ailedger withdraw` end to end: the embedded data directory and a real node over HTTP.

Receipts are base-only calls (version 0), which pay their whole charge to the provider ("server"): the provider's
earnings line is the block's charge, the receipts behind it are the receipts of that block, and `withdraw` moves
the earnings to its balance. The data, owner and validator roles are exercised on a real chain in
tests/test_settlement_rules.py; here the views' filters over such a chain are checked against its JSON.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from rich.console import Console

from ailedger.api.client import HttpClient
from ailedger.chain import writerlock
from ailedger.cli import earnings_render as render
from ailedger.cli.backend import Embedded
from ailedger.cli.demo import running_node
from ailedger.core.address import encode_address
from ailedger.settlement import service
from tests.datanet_sim import rh
from tests.test_billing_cli import FEE, balance, init_chain, receipts_file, register_base
from tests.test_cli import as_json, fails, home, run
from tests.test_settlement_world import BUILDER, C1, C2, VAL1, receipt, settle, world

__all__ = ["home"]


def test_earnings_and_withdraw_embedded_then_over_http(home: Path, tmp_path: Path, monkeypatch: object) -> None:
    init_chain()
    register_base()
    run("billing", "deposit", "5", "--from", "alice")
    key = as_json("billing", "key", "create", "--provider", "server", "--allowance", "1", "--from", "alice")["api_key"]
    # 2,500 tokens at 2,000 per 1k = 5,000 and 1 token -> 2: both to the provider, in the block that stored them
    sent = as_json("billing", "submit-receipts", str(receipts_file(tmp_path / "r.json", key, (1, 2_000, 500),
                                                                    (2, 1, 0))), "--from", "server")
    height = sent["tx"]["height"]
    doc = as_json("earnings", "server")
    assert (doc["balance"], doc["held"], doc["earned"], len(doc["lines"])) == (5_002, 0, 5_002, 1)
    assert [(ln["height"], [(x["role"], x["model"], x["amount"], x["count"]) for x in ln["entries"]])
            for ln in doc["lines"]] == [(height, [("compute", "tiny@0", 5_002, 2)])]
    assert doc["by_model"] == {"tiny@0": {"amount": 5_002, "held": 0, "forfeited": 0, "count": 2}}
    assert as_json("billing", "escrow")["escrowed"] == 0 and as_json("billing", "escrow")["unsettled"] == 0
    line = as_json("earnings", "server", "--line", str(height))
    assert [(r["id"], r["parts"]) for r in line["receipts"]] == [
        ("01" * 32, [{"role": "compute", "amount": 5_000}]), ("02" * 32, [{"role": "compute", "amount": 2}])]
    assert "compute" in run("earnings", "server").stdout and "receipts behind it" in run(
        "earnings", "server", "--line", str(height)).stdout
    assert as_json("earnings", "server", "--from-height", str(height + 1))["lines"] == []
    fails("earnings", "server", "--from-height", "5", "--to-height", "4", code="bad_height_range")
    fails("earnings", "server", "--line", "1", code="earnings_line_not_found")
    fails("withdraw", "--from", "server", code="bad_argument", exit=2)
    fails("withdraw", "6", "--from", "server", code="insufficient_earnings")
    fails("withdraw", "--all", "--from", "bob", code="nothing_to_withdraw")
    b0 = balance("server")
    out = as_json("withdraw", "0.002", "--from", "server")
    assert (out["withdrawn_now"], out["balance"]) == (2_000, 3_002) and balance("server") == b0 + 2_000 - FEE
    assert as_json("withdraw", "--all", "--from", "server")["balance"] == 0
    totals = as_json("earnings", "server")
    assert (totals["withdrawn"], totals["balance"]) == (5_002, 0)
    assert "settlement_vesting_blocks" in run("params").stdout
    run("chain", "verify")  # the replay recomputes every settlement bit for bit

    monkeypatch.setattr(writerlock, "WRITER_WAIT_S", 0.2)  # type: ignore[attr-defined]
    server = as_json("keys", "show", "server")["address"]
    with running_node(home, home / "data", tmp_path / "node.log", 0.05) as url:
        with HttpClient(url) as client:
            seen = {"earnings": client.settlement_earnings(server), "line": client.settlement_line(server, height),
                    "totals": client.settlement_totals()}
        assert seen["totals"]["conserved"] and seen["totals"]["settled"] == 5_002
        for path, status, code in [(f"/v1/settlement/earnings/{server}/lines/1", 404, "earnings_line_not_found"),
                                   ("/v1/settlement/earnings/al1nope", 400, "bad_address"),
                                   (f"/v1/settlement/earnings/{server}?from_height=9&to_height=2", 400,
                                    "bad_height_range"),
                                   (f"/v1/settlement/earnings/{server}?limit=0", 400, "bad_request")]:
            r = httpx.get(url + path)
            assert r.status_code == status and r.json()["error"]["code"] == code, path
            assert set(r.json()["error"]) == {"code", "number", "message", "detail"}
    embedded = Embedded(home / "data", write=False)
    try:
        assert {"earnings": embedded.settlement_earnings(server), "line": embedded.settlement_line(server, height),
                "totals": embedded.settlement_totals()} == seen
    finally:
        embedded.close()


def test_views_filter_per_datanet_model_and_period() -> None:
    w = world()
    settle(w, receipt(1, 1_000, [(rh(1), 10_000)]))
    first = w.height
    w.until(w.height + 2)
    settle(w, receipt(2, 2_000, [(rh(2), 10_000)]), receipt(3, 5, version=0))
    second = w.height
    c1 = encode_address(C1.address)
    doc = service.earnings_json(w.state, w.height, c1)
    assert [ln["height"] for ln in doc["lines"]] == [first, second] and doc["balance"] == 1_500_000
    assert doc["by_datanet"] == {"facts": {"amount": 1_500_000, "held": 0, "forfeited": 0, "count": 2}}
    assert [ln["height"] for ln in service.earnings_json(w.state, w.height, c1, from_height=first + 1)["lines"]] == [
        second]
    assert service.earnings_json(w.state, w.height, c1, to_height=first)["by_model"] == {
        "legal@1": {"amount": 500_000, "held": 0, "forfeited": 0, "count": 1}}
    assert service.earnings_json(w.state, w.height, c1, model="nope")["lines"] == []
    assert service.earnings_json(w.state, w.height, c1, limit=1)["more"] is True
    owner = service.earnings_json(w.state, w.height, encode_address(BUILDER.address), model="legal@1")
    assert [x["role"] for ln in owner["lines"] for x in ln["entries"]] == ["model_owner", "model_owner"]
    val = service.line_json(w.state, w.height, encode_address(VAL1.address), second)
    assert [x["role"] for x in val["entries"]] == ["validator"]
    assert [r["parts"] for r in val["receipts"]] == [[{"role": "validators_pool", "amount": 200_000}]]


def test_tables_draw_vesting_lines_and_receipts() -> None:
    w = world(params={"settlement_vesting_threshold_bps": 7_000})
    settle(w, receipt(1, 1_000, [(rh(1), 5_000), (rh(3), 5_000)]), receipt(2, 10, []))
    c2 = encode_address(C2.address)
    doc = service.earnings_json(w.state, w.height, c2)
    assert doc["held"] == 250_000 and doc["vesting"][0]["amount"] == 250_000
    console = Console(record=True, width=160)
    render.render_earnings(console, doc)
    render.render_line(console, service.line_json(w.state, w.height, c2, w.height))
    text = console.export_text()
    assert "vesting" in text and "0.25" in text and "receipts behind it" in text and "data" in text
