"""The governance, parameter, market and agents pages in a real browser (Playwright driving Debian's chromium).

The chain is built with the real state machine (tests/explorer_world.py `make_gov_world`): proposal 1 changes
`gov_timelock_blocks` 2 -> 3 and is executed, 2 is vetoed, 3 rejected; one compute lease is active with a work
report and another order is open; agent `calc` passed a verification, `bad` failed two and is suspended. Each
page must load without a console error and show the numbers the state holds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import uvicorn
from playwright.sync_api import Page

from ailedger.api.app import create_app
from ailedger.api.server import run_server_in_thread
from ailedger.chain.node import Node
from ailedger.core.address import encode_address
from ailedger.governance.state import Status
from ailedger.modules import default_runtime
from ailedger.web.app import add_explorer
from tests.explorer_world import GovWorld, browser, make_gov_world, page

__all__ = ["browser", "page"]  # the fixtures, shared with test_explorer_browser

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> GovWorld:
    return make_gov_world(tmp_path_factory.mktemp("govworld"))


@pytest.fixture(scope="module")
def url(world: GovWorld) -> Iterator[str]:
    node = Node(world.data, default_runtime())
    try:
        app = create_app(node)
        add_explorer(app, node)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        with run_server_in_thread(server) as served:
            yield served
    finally:
        node.close()



def watch(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    return problems


def text(page: Page, selector: str) -> str:
    return " ".join((page.locator(selector).first.text_content() or "").split())


def test_the_new_pages_load_without_console_errors_and_draw_their_charts(world: GovWorld, url: str,
                                                                       page: Page) -> None:
    assert world.facts["proposals"] == {1: Status.EXECUTED, 2: Status.VETOED, 3: Status.REJECTED}
    problems = watch(page)
    for path in ["/governance", "/governance/proposals/1", "/governance/proposals/2", "/governance/proposals/3",
                 "/params", "/params/gov_timelock_blocks", "/market", "/agents", "/governance?before=3"]:
        resp = page.goto(url + path)
        assert resp is not None and resp.status == 200, path
        assert page.locator("h1").first.is_visible(), path
        page.wait_for_load_state("networkidle")
        assert not problems, f"{path}: {problems}"
    page.goto(url + "/params/gov_timelock_blocks")
    assert page.locator("#chart-param canvas").count() == 1
    page.goto(url + "/market")
    assert page.locator("#chart-share-1 canvas").count() == 1
    for path, want in (("/governance/proposals/99", 404), ("/governance/proposals/x", 400), ("/params/nope", 404),
                       ("/market?leases_before=x", 400), ("/agents?tasks_before=1.2", 400)):
        resp = page.goto(url + path)
        assert resp is not None and resp.status == want, path


def test_governance_shows_proposals_tallies_and_what_happened_to_the_deposits(url: str, page: Page) -> None:
    page.goto(url + "/governance")
    ids = [page.locator("table.proposals tbody tr").nth(i).get_attribute("data-id") for i in range(3)]
    assert ids == ["3", "2", "1"]  # newest first
    row = {pid: f"table.proposals tr[data-id='{pid}']" for pid in (1, 2, 3)}
    assert text(page, row[1] + " .status") == "passed and executed"
    assert text(page, row[1] + " .fate") == "refunded to the depositors"
    assert "executed at" in text(page, row[1])
    assert text(page, row[2] + " .status") == "vetoed"
    assert text(page, row[2] + " .fate") == "sent to the treasury"
    assert "veto reached: 62.50% of votes" in text(page, row[2])
    assert text(page, row[3] + " .status") == "rejected: not enough yes"
    assert "threshold not met: 37.50% yes" in text(page, row[3])
    # Alice (50) and Bob (30) voted; of 108 bonded (governance 100, agents 8)
    assert text(page, row[1] + " .tally") == "yes 80 · no 0 · abstain 0 · veto 0"
    assert "quorum met: 74.07% of bonded stake voted" in text(page, row[1])
    page.click(f"{row[2]} a")
    page.wait_for_url(url + "/governance/proposals/2")
    assert text(page, "#voters") == "2"
    assert text(page, ".bar-row[data-option='veto'] .bar-value") == "50 (62.50%)"
    assert text(page, ".bar-row[data-option='no'] .bar-value") == "30 (37.50%)"
    assert "stakers agree" in text(page, "pre.record-text")


def test_a_parameters_page_lists_the_executed_change(world: GovWorld, url: str, page: Page) -> None:
    page.goto(url + "/params")
    assert page.locator("table.params tbody tr").count() > 20
    assert text(page, "tr[data-name='gov_timelock_blocks'] .value") == "3"
    assert text(page, "tr[data-name='gov_timelock_blocks'] .changes") == "1"
    assert text(page, "tr[data-name='gov_voting_period_blocks'] .changes") == "0"  # proposal 3 was rejected
    page.click("tr[data-name='gov_timelock_blocks'] a")
    page.wait_for_url(url + "/params/gov_timelock_blocks")
    assert text(page, "#value") == "3" and text(page, "#change-count") == "1"
    rows = page.locator("table.history tbody tr")
    assert rows.count() == 1
    assert text(page, "table.history tbody tr .change") == "2 → 3"
    assert text(page, "table.history tbody tr td") == str(world.facts["executed_at"])
    page.click("table.history a[href='/governance/proposals/1']")
    page.wait_for_url(url + "/governance/proposals/1")
    assert page.locator("table.changes a[href='/params/gov_timelock_blocks']").count() == 1


def test_search_and_navigation_find_proposals_and_parameters(url: str, page: Page) -> None:
    for query, target in (("p1", "/governance/proposals/1"), ("proposal 3", "/governance/proposals/3"),
                          ("gov_timelock_blocks", "/params/gov_timelock_blocks")):
        page.goto(url + "/")
        page.fill("#q", query)
        page.press("#q", "Enter")
        page.wait_for_url(url + target)
    page.goto(url + "/search?q=p9")
    assert "nothing is called" in text(page, "main")
    page.goto(url + "/")
    for label, target in (("Governance", "/governance"), ("Parameters", "/params"), ("Market", "/market"),
                          ("Agents", "/agents")):
        page.click(f"nav[aria-label='Main'] >> text={label}")
        page.wait_for_url(url + target)


def test_market_shows_concentration_leases_orders_and_providers(world: GovWorld, url: str, page: Page) -> None:
    page.goto(url + "/market")
    assert text(page, "#cap") == "25.00%"
    (cls,) = world.facts["classes"]
    # one lease of 4 units against the share floor of 16: 25%, HHI 625
    assert text(page, f".concentration[data-class='{cls}'] .top-share") == "25.00%"
    assert text(page, f".concentration[data-class='{cls}'] .hhi") == "625"
    lease = f"table.leases tr[data-id='{world.facts['lease']}']"
    assert text(page, lease + " .reports") == "1"
    provider = encode_address(world.facts["lease_provider"])
    assert page.locator(f"{lease} .provider a").get_attribute("href") == f"/accounts/{provider}"
    assert page.locator(f"table.orders tr[data-id='{world.facts['open_order']}']").count() == 1
    assert page.locator(f"table.orders tr[data-id='{world.facts['order']}']").count() == 0  # leased, not open
    assert page.locator("table.providers tbody tr").count() == 3
    assert text(page, f"table.providers tr[data-address='{provider}'] .bond") == "2"


def test_agents_show_verified_rates_suspensions_and_task_outcomes(world: GovWorld, url: str, page: Page) -> None:
    page.goto(url + "/agents")
    assert text(page, "tr[data-name='calc'] .counts") == "1 / 0"
    assert text(page, "tr[data-name='calc'] .score") == "66.66%"  # Beta(2, 1)
    assert text(page, "tr[data-name='bad'] .counts") == "0 / 2"
    assert text(page, "tr[data-name='bad'] .score") == "25.00%"  # Beta(1, 3)
    until = world.facts["agents"]["bad"][3]
    assert text(page, "tr[data-name='bad'] .status") == f"suspended until block {until}"
    assert text(page, "tr[data-name='calc'] .status").startswith("active since block")
    for tid in world.facts["tasks"]["bad"]:
        assert text(page, f"table.tasks tr[data-id='{tid}'] .outcome") == "verified: failed"
    (good,) = world.facts["tasks"]["calc"]
    assert text(page, f"table.tasks tr[data-id='{good}'] .outcome") == "verified: passed"

