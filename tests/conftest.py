"""Shared fixtures: deterministic keys, a genesis, and a real SQLite chain in a temp directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ailedger.chain.genesis import Allocation, Genesis
from ailedger.chain.node import Node
from ailedger.chain.runtime import Runtime
from ailedger.chain.store import Store
from ailedger.cluster import AUTO, Cluster, connect
from ailedger.core.keys import KeyPair
from ailedger.modules import default_runtime
from tests.pg_server import PgServer

CHAIN_ID = "ailedger-test"


def key(n: int) -> KeyPair:
    return KeyPair.from_seed(n.to_bytes(32, "big"))


@pytest.fixture
def runtime() -> Runtime:
    return default_runtime()


@pytest.fixture
def proposer() -> KeyPair:
    return key(1000)


@pytest.fixture
def users() -> list[KeyPair]:
    return [key(i) for i in range(1, 6)]


@pytest.fixture
def genesis(proposer: KeyPair, users: list[KeyPair]) -> Genesis:
    return Genesis(CHAIN_ID, 1_700_000_000_000, proposer.public_key,
                   [Allocation(u.address, 1_000_000_000) for u in users], {"unbonding_blocks": 3})


@pytest.fixture
def node(tmp_path: Path, genesis: Genesis, runtime: Runtime, proposer: KeyPair, store_url: str | None) -> Node:
    Store.create(tmp_path / "chain", genesis, runtime, store_url).close()
    n = Node(tmp_path / "chain", runtime, proposer)
    yield n  # type: ignore[misc]
    n.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A local Ray head on loopback with 2 worker CPUs, one per test module that asks for it.

    Module scope, not session: the head (and Ray's threads in this process) stop when the module's
    tests end, so no later test runs beside them.
    """
    with connect(AUTO, num_cpus=2) as c:
        yield c


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL server for the whole run (started on first use, stopped at the end)."""
    server = PgServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """Where a test's chain lives: None (the data directory's SQLite file) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    server: PgServer = request.getfixturevalue("pg_server")
    return server.fresh_url()
