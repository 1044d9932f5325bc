"""`ailedger gov …` and `ailedger params NAME --history` end to end on an embedded data directory (each write
seals a block), then the same reads over HTTP from a node serving that directory."""

from __future__ import annotations

from pathlib import Path

import httpx

from ailedger.api.client import HttpClient
from ailedger.cli.backend import Embedded
from tests.conftest_api import serve_in_thread
from tests.test_cli import as_json, fails, home, run

__all__ = ["home"]


def init_chain() -> None:
    for k in ("alice", "bob"):
        run("keys", "new", k)
    run("chain", "init", "--chain-id", "gov-cli", "--alloc", "alice=1000", "--alloc", "bob=100",
        "--param", "gov_min_deposit=10000000", "--param", "gov_voting_period_blocks=2",
        "--param", "gov_timelock_blocks=1", "--param", "gov_deposit_period_blocks=3")


def test_propose_vote_execute_and_history(home: Path) -> None:
    init_chain()
    run("tx", "stake", "--from", "alice", "--amount", "100")  # block 1
    run("tx", "stake", "--from", "bob", "--amount", "10")  # block 2
    for change, code in (("no_such=1", "gov_unknown_param"), ("datanet_max_validators=0", "gov_param_out_of_bounds"),
                         ("datanet_max_validators=1.5", "gov_param_type"),
                         ("datanet_max_validators", "gov_bad_proposal"),
                         ("datanet_min_window_blocks=200000", "gov_param_order")):
        fails("gov", "propose", "--from", "alice", "--title", "t", "--set", change, code=code)
    fails("gov", "propose", "--from", "alice", "--title", "t", "--spend-to", "bob", "--spend", "1",
          code="gov_treasury_insufficient")
    p = as_json("gov", "propose", "--from", "alice", "--title", "more validators", "--text", "growth",
                "--set", "datanet_max_validators=300")  # block 3: full deposit, voting opens now
    assert (p["id"], p["status"], p["voting_start"], p["voting_end"]) == (1, "voting", 3, 5)
    assert p["tally"]["total_stake"] == 110_000_000 and p["tx"]["receipt"]["ok"]
    fails("gov", "vote", "1", "maybe", "--from", "alice", code="gov_bad_option")
    v = as_json("gov", "vote", "1", "yes", "--from", "alice")  # block 4
    assert v["vote"] == {"address": v["vote"]["address"], "option": "yes", "weight": 100_000_000}
    as_json("gov", "vote", "1", "no", "--from", "bob")  # block 5: the tally runs at its end
    shown = as_json("gov", "show", "1", "--voter", "bob")
    assert (shown["status"], shown["execute_at"], shown["vote"]["option"]) == ("passed", 6, "no")
    assert shown["tally"]["yes_bps"] == 9_090 and shown["deposit_fate"] == "refunded"
    fails("gov", "vote", "1", "yes", "--from", "bob", code="gov_voting_closed")
    fails("gov", "deposit", "1", "1", "--from", "bob", code="gov_not_in_deposit_period")
    assert as_json("gov", "fund", "2", "--from", "bob")["treasury"] == 2_000_000  # block 6: executes at its end
    assert as_json("params", "datanet_max_validators")["datanet_max_validators"]["value"] == 300
    hist = as_json("params", "datanet_max_validators", "--history")
    assert hist["history"] == [{"height": 6, "old": 256, "new": 300, "proposal": 1}] and hist["changes"] == 1
    assert "300" in run("params", "datanet_max_validators", "--history").stdout
    fails("params", "--history", code="bad_argument", exit=2)
    fails("params", "nope", "--history", code="bad_parameter")
    listed = as_json("gov", "list")
    assert [(x["id"], x["status"]) for x in listed["proposals"]] == [(1, "executed")]
    assert as_json("gov", "list", "--status", "voting")["proposals"] == []
    fails("gov", "list", "--status", "nope", code="bad_request")
    fails("gov", "show", "9", code="gov_proposal_not_found")
    for args in (("gov", "list"), ("gov", "show", "1"), ("gov", "treasury"), ("params",)):
        assert "Traceback" not in run(*args).stdout
    assert "more validators" in run("gov", "list").stdout

    embedded = Embedded(home / "data", write=False)
    try:
        with serve_in_thread(embedded.node) as url, HttpClient(url) as client:
            assert client.gov_proposals() == embedded.gov_proposals()
            bob = shown["vote"]["address"]
            assert client.gov_proposal(1, bob) == embedded.gov_proposal(1, bob)
            assert client.gov_treasury() == embedded.gov_treasury()
            assert client.param_history("datanet_max_validators") == hist
            for path, status, code in [("/v1/gov/proposals/9", 404, "gov_proposal_not_found"),
                                       ("/v1/gov/proposals?limit=0", 400, "bad_request"),
                                       ("/v1/params/nope/history", 400, "bad_parameter")]:
                r = httpx.get(url + path)
                assert r.status_code == status and r.json()["error"]["code"] == code, path
    finally:
        embedded.close()
    run("chain", "verify")
