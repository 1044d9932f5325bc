"""Structural invariants of DESIGN.md, checked on the source itself.

* imports only go down the layers (core <- chain <- domain <- engines <- interfaces);
* the state machine's modules never import a clock, randomness, the OS, a database or a network
  library, and use no float literals or true division, so `apply` is deterministic by construction.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ailedger"

LAYER = {
    "core": 0,
    "chain": 1,
    "cluster": 1,  # Ray: connect, ordered retried tasks; imports only core, the engines import it
    # domain, each may read the ones above it in this list
    "reputation": 2,  # datanets, models, the market and agents weigh by it
    "datanet": 3,
    "models": 4,  # base models and adapters, whose provenance names Datanet versions
    "market": 5,  # compute jobs, which train and serve models
    "billing": 5,  # prepaid balances, API keys, receipts priced by the model registry (never imports market)
    "agents": 6,
    "settlement": 6,  # pays receipts (billing) by Datanet splits, record statuses, reputation and stakes
    "governance": 6,  # proposals and votes over every module's parameters (through the registry, not imports)
    # engines: serving loads what the factory trains; attribution reads both
    "factory": 7, "serving": 8, "attribution": 9,
    "agentrun": 10,  # runs agents on the serving engine, with the tools and checkers (modules never imports it)
    "provider": 10,  # the compute provider's worker: bids, runs leases on the factory and serving, verifies
    "modules": 11,
    "api": 12, "web": 12, "cli": 13,
    "sim": 12,  # the adversarial economy: drives the assembled runtime (modules) and agentrun's checkers
}

# Modules whose code runs inside `apply` or computes what a block commits to.
DETERMINISTIC = ["core/encoding.py", "core/hashing.py", "core/merkle.py", "core/amounts.py", "core/address.py",
                 "chain/runtime.py", "chain/accounts.py", "chain/state.py", "chain/queue.py", "chain/params.py",
                 "chain/module.py", "chain/tx.py", "chain/block.py", "chain/receipt.py",
                 "reputation/beta.py", "reputation/module.py",
                 "datanet/state.py", "datanet/frontier.py", "datanet/rules.py", "datanet/payloads.py", "datanet/txs.py",
                 "datanet/module.py", "datanet/views.py",
                 "models/state.py", "models/payloads.py", "models/txs.py", "models/module.py", "models/views.py",
                 "market/state.py", "market/payloads.py", "market/txs.py", "market/rules.py", "market/module.py",
                 "market/views.py", "market/resources.py", "market/book.py", "market/concentration.py",
                 "market/leases.py", "market/auction.py", "market/checks.py", "market/trade.py",
                 "billing/state.py", "billing/payloads.py", "billing/txs.py", "billing/rules.py", "billing/module.py",
                 "billing/views.py",
                 "settlement/state.py", "settlement/apportion.py", "settlement/batch.py", "settlement/plan.py",
                 "settlement/payout.py", "settlement/rules.py", "settlement/txs.py", "settlement/module.py",
                 "settlement/reference.py", "settlement/views.py",
                 "governance/payloads.py", "governance/state.py", "governance/tally.py", "governance/rules.py",
                 "governance/txs.py", "governance/lifecycle.py", "governance/module.py", "governance/views.py",
                 "agents/catalog.py", "agents/payloads.py", "agents/state.py", "agents/reliability.py",
                 "agents/rules.py", "agents/txs.py", "agents/module.py", "agents/views.py",
                 "attribution/shares.py"]  # what settlement recomputes: scores to basis points
FORBIDDEN = {"time", "datetime", "random", "secrets", "os", "sqlite3", "socket", "threading", "httpx", "uuid",
             "subprocess", "pathlib", "asyncio"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if rel.parts else ""


def test_imports_only_go_down() -> None:
    bad = []
    for path in SRC.rglob("*.py"):
        own = _package(path)
        if own not in LAYER:
            continue
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "ailedger" or len(parts) < 2 or parts[1] not in LAYER:
                continue
            if LAYER[parts[1]] > LAYER[own] or (LAYER[parts[1]] == LAYER[own] and parts[1] != own):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


@pytest.mark.parametrize("rel", DETERMINISTIC)
def test_state_machine_is_deterministic_by_construction(rel: str) -> None:
    path = SRC / rel
    tree = ast.parse(path.read_text())
    for name in _imports(path):
        assert name.split(".")[0] not in FORBIDDEN, f"{rel} imports {name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            assert not isinstance(node.value, float), f"{rel}:{node.lineno} float literal"
        if isinstance(node, ast.BinOp | ast.AugAssign):
            assert not isinstance(node.op, ast.Div), f"{rel}:{node.lineno} true division (use //)"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"float", "open", "print", "input"}, f"{rel}:{node.lineno} {node.func.id}()"
