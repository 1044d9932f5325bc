"""The explorer tests' world: a data directory made by `ailedger demo` on the tiny model, and an explorer over it.

The demo runs once per test process (it takes a minute or more: keys, Datanet, gates, votes, a LoRA
training job, paid answers with attribution, settlement), in a child process exactly as a user runs
it; each test module then serves the explorer over the directory on loopback, in-process, with the
tiny base and the demo's adapter so that "re-verify" can recompute attributions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from ailedger.factory.tiny import build_tiny

EXE = Path(sys.executable).parent / "ailedger"
QUICK = ["--epochs", "2", "--k", "64", "--max-tokens", "8", "--facts-per-owner", "2", "--questions-per-owner", "1"]
CHROMIUM = "/usr/bin/chromium"


@dataclass(frozen=True)
class DemoWorld:
    root: Path  # the demo's --dir
    tiny: Path  # the tiny base model
    summary: dict[str, Any]  # the demo's --json output

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def adapter(self) -> Path:
        return self.root / "adapters" / "atlas-lora"


_BUILT: list[DemoWorld] = []


def demo_world(factory: pytest.TempPathFactory) -> DemoWorld:
    """Run the demo once per process; later callers get the same directory."""
    if not _BUILT:
        _BUILT.append(make_demo(factory.mktemp("explorer")))
    return _BUILT[0]


def make_demo(base: Path) -> DemoWorld:
    """The tiny model and `ailedger demo` on it, under `base`."""
    tiny = build_tiny(base / "tiny", seed=5)
    root = base / "demo"
    env = {**os.environ, "AILEDGER_KDF_COST": "test", "CI": "true"}
    p = subprocess.run([str(EXE), "--json", "demo", "--dir", str(root), "--base", str(tiny), *QUICK],
                       capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL, check=False)
    assert p.returncode == 0, p.stderr[-4000:]
    return DemoWorld(root, tiny, json.loads(p.stdout))


@dataclass(frozen=True)
class Served:
    url: str
    world: DemoWorld


def serve_explorer(world: DemoWorld) -> Iterator[Served]:
    """The node's API app with the explorer added, over the demo's directory, on a free loopback port."""
    import uvicorn

    from ailedger.api.app import create_app
    from ailedger.api.server import run_server_in_thread
    from ailedger.chain.node import Node
    from ailedger.modules import default_runtime
    from ailedger.web.app import add_explorer
    from ailedger.web.data_pages import Verifier

    node = Node(world.data, default_runtime())
    try:
        app = create_app(node)
        add_explorer(app, node, Verifier(world.tiny, [world.adapter]))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        with run_server_in_thread(server) as url:
            yield Served(url, world)
    finally:
        node.close()


def require_chromium() -> str:
    """Debian's chromium, or a failure that says how to get it (never a silent skip)."""
    if not (Path(CHROMIUM).is_file() and shutil.which("chromium")):
        pytest.fail(f"the explorer's browser tests need Debian's chromium at {CHROMIUM}; run `make test`, "
                    "which installs it (apt-get install chromium) before the tests")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium under Playwright, one per test module (shared by the explorer's browser tests)."""
    path = require_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context and page per test, with a 30 s default timeout."""
    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    ctx.close()


# -- a small chain with proposals, market leases and agent tasks (the governance, market and agents pages) --

@dataclass(frozen=True)
class GovWorld:
    data: Path
    facts: dict[str, Any]  # what the pages must show (proposal ids and outcomes, a lease, agents)


def make_gov_world(root: Path) -> GovWorld:
    """Build, with the real runtime and the sims' helpers, a stored chain (`root/data`) on which: proposal 1
    changes `gov_timelock_blocks` 2 -> 3 and is executed, proposal 2 is vetoed, proposal 3 rejected; a compute
    order is leased (and reported on) and another is still open; agent `calc` passed a verification and agent
    `bad` failed two and is suspended."""
    from ailedger.agents import payloads as ag
    from ailedger.agents.state import TASK_COUNT_KEY, AgentStatus, get_u64
    from ailedger.chain.genesis import Allocation
    from ailedger.chain.store import Store
    from ailedger.governance import txs as gov
    from ailedger.governance.payloads import Option
    from ailedger.market import payloads as mp
    from ailedger.market import views as market_views
    from ailedger.models import payloads as m
    from tests import agents_sim, governance_sim, market_sim
    from tests.datanet_sim import RUNTIME, Sim
    from tests.models_sim import base

    class StoredSim(Sim):
        """The sims' driver, also committing each block to a real store (`copy`, for trial blocks, makes a
            plain Sim, which does not)."""

        store: Store | None

        def block_of(self, txs: list[Any]) -> list[Any]:
            built = RUNTIME.build_block(self.state, self.parent, self.parent.timestamp_ms + 1_000,
                                        market_sim.PROPOSER, txs)
            assert built.block is not None and not built.rejected, built.rejected
            if self.store is not None:
                self.store.commit_block(built)
            self.parent = built.block.header
            self.blocks.append(built.block)
            return built.receipts

    everyone = [market_sim.CONSUMER, market_sim.OTHER, *market_sim.PROVIDERS]
    alloc = [*governance_sim.ALLOC, *agents_sim.ALLOC, *[Allocation(k.address, 10**12) for k in everyone]]
    params = {**governance_sim.PARAMS, **agents_sim.PARAMS, "market_check_min_bps": 0, "market_check_max_bps": 0}
    sim = StoredSim(alloc, params)
    sim.store = Store.create(root / "data", sim.genesis, RUNTIME)
    a, b = governance_sim.ALICE, governance_sim.BOB
    try:
        # governance: an executed change, a veto, a rejection
        sim.ok((a, gov.PROPOSE, governance_sim.change(("gov_timelock_blocks", 3), title="slower timelock")))
        sim.ok((a, gov.VOTE, governance_sim.vote(1, Option.YES)), (b, gov.VOTE, governance_sim.vote(1, Option.YES)))
        sim.ok((a, gov.PROPOSE, governance_sim.text()))
        sim.ok((a, gov.VOTE, governance_sim.vote(2, Option.VETO)), (b, gov.VOTE, governance_sim.vote(2, Option.NO)))
        sim.ok((a, gov.PROPOSE, governance_sim.change(("gov_voting_period_blocks", 4), title="longer votes")))
        sim.ok((a, gov.VOTE, governance_sim.vote(3, Option.NO)), (b, gov.VOTE, governance_sim.vote(3, Option.YES)))
        sim.until(governance_sim.header(sim, 1).execute_at or sim.height)
        sim.until(max(governance_sim.header(sim, p).voting_end for p in (1, 2, 3)) + 1)
        sim.block()
        # agents: `calc` passes a verification; `bad` fails two and is suspended
        op, rival, verifier = agents_sim.OPERATOR, agents_sim.RIVAL, agents_sim.VERIFIER
        sim.ok((agents_sim.STRANGER, m.REGISTER_BASE, base()))
        sim.ok((verifier, ag.REGISTER_VERIFIER, ag.RegisterVerifier()))
        sim.ok((op, ag.REGISTER, agents_sim.spec("calc")), (rival, ag.REGISTER, agents_sim.spec("bad", price=50_000)))
        tasks: dict[str, list[int]] = {"calc": [], "bad": []}

        def post(name: str) -> int:
            sim.ok((agents_sim.CONSUMER, ag.POST_TASK, agents_sim.task(name)))
            tid = get_u64(sim.state, TASK_COUNT_KEY)
            tasks[name].append(tid)
            return tid

        tid = post("calc")
        agents_sim.until_sampled(sim, op, tid, want=True)
        sim.ok((verifier, ag.VERDICT, ag.Verdict(tid, 1)))
        while agents_sim.agent(sim, "bad").status == AgentStatus.ACTIVE:
            tid = post("bad")
            agents_sim.until_sampled(sim, rival, tid, want=True)
            sim.ok((verifier, ag.VERDICT, ag.Verdict(tid, 0)))
        # the market: providers with bonds and offers, one leased order with work reported, one open order
        sim.ok(*[(k, mp.REGISTER_PROVIDER, mp.RegisterProvider(market_sim.key(100 + i).address, market_sim.BOND))
                 for i, k in enumerate(market_sim.PROVIDERS[:3])])
        sim.ok(*[(k, mp.POST_OFFER, market_sim.offer()) for k in market_sim.PROVIDERS[:3]])
        sim.ok((market_sim.CONSUMER, mp.POST_ORDER, market_sim.order(max_price=100, duration=30, window=2)))
        oid = market_sim.last_order(sim)
        sim.ok((market_sim.PROVIDERS[0], mp.BID, mp.Bid(oid, 40)), (market_sim.PROVIDERS[1], mp.BID, mp.Bid(oid, 30)))
        order = market_views.get_order(sim.state, oid)
        assert order is not None
        sim.until(order.window_end)
        lease = market_sim.lease_of(sim, oid)
        sim.ok((market_sim.PROVIDERS[1], mp.REPORT_WORK, mp.ReportWork(lease.id, b"\x01" * 32, 0)))
        sim.ok((market_sim.OTHER, mp.POST_ORDER, market_sim.order(max_price=90, duration=5, window=200)))
        sim.block()
        height = sim.height
    finally:
        if sim.store is not None:
            sim.store.close()
    calc, bad = agents_sim.agent(sim, "calc"), agents_sim.agent(sim, "bad")
    facts = {"height": height, "proposals": {pid: governance_sim.header(sim, pid).status for pid in (1, 2, 3)},
             "executed_at": governance_sim.header(sim, 1).execute_at, "order": oid, "open_order": oid + 1,
             "lease": lease.id, "lease_provider": lease.provider, "lease_price": lease.price,
             "classes": market_views.classes(sim.state), "tasks": tasks,
             "agents": {"calc": (calc.verified_good, calc.verified_bad, calc.status),
                        "bad": (bad.verified_good, bad.verified_bad, bad.status, bad.suspended_until)}}
    return GovWorld(root / "data", facts)
