"""Helpers for the HTTP tests: a uvicorn server in a thread, a node in a subprocess, signed transfers.

Imported explicitly by test_api.py and test_crash.py (pytest only auto-loads conftest.py).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ailedger.api.server import make_server, run_server_in_thread
from ailedger.chain.accounts import TRANSFER, TRANSFER_CODEC, Transfer
from ailedger.chain.genesis import Genesis
from ailedger.chain.node import Node
from ailedger.chain.nodekey import write_node_key
from ailedger.chain.runtime import Runtime
from ailedger.chain.store import Store
from ailedger.chain.tx import sign_tx
from ailedger.core.keys import KeyPair
from tests.conftest import CHAIN_ID

REPO = Path(__file__).resolve().parents[1]


def transfer(k: KeyPair, nonce: int, to: bytes, amount: int, fee: int = 1000, chain: str = CHAIN_ID) -> bytes:
    return sign_tx(k, chain, nonce, fee, TRANSFER, TRANSFER_CODEC.encode(Transfer(to, amount)))


def make_chain(data_dir: Path, genesis: Genesis, runtime: Runtime, proposer: KeyPair,
               url: str | None = None) -> Path:
    """A data directory as `chain init` leaves it: the genesis chain (in its SQLite file, or in the
    PostgreSQL database at `url`) and node_key.json."""
    Store.create(data_dir, genesis, runtime, url).close()
    write_node_key(data_dir, proposer)
    return data_dir


@contextmanager
def serve_in_thread(node: Node) -> Iterator[str]:
    """A real uvicorn server for `node` on a free loopback port; yields its base URL, stops on exit."""
    with run_server_in_thread(make_server(node)) as url:
        yield url


@contextmanager
def producing(node: Node, block_interval_s: float) -> Iterator[str]:
    """`node` sealing a block every `block_interval_s` behind a real server; yields its base URL."""
    node.block_interval_s = block_interval_s
    node.start()
    try:
        with serve_in_thread(node) as url:
            yield url
    finally:
        node.stop()


class NodeProcess:
    """`python -m ailedger.api` on a data directory; always `kill()` it in a finally block."""

    def __init__(self, data_dir: Path, block_interval_s: float = 0.1, log: Path | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        self.log = open(log or os.devnull, "ab")  # noqa: SIM115 - closed in kill()/wait_exit()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Its own process group, so that kill() also ends the worker processes of `--workers N`.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ailedger.api", "--data-dir", str(data_dir), "--port", "0",
             "--block-interval", str(block_interval_s), *extra],
            stdout=subprocess.PIPE, stderr=self.log, cwd=REPO, env=env, start_new_session=True)
        self.url: str | None = None

    def wait_listening(self, timeout_s: float = 20.0) -> str:
        """Block until the node prints its "listening on URL" line; returns the URL."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the node did not report listening in time")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(f"the node exited before listening (rc {self.proc.poll()})")
                buf += chunk
        line = buf.split(b"\n", 1)[0].decode()
        assert line.startswith("listening on http://"), line
        self.url = line.removeprefix("listening on ").split()[0]
        return self.url

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout_s: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout_s)
        finally:
            self.kill()

    def kill(self) -> None:
        """SIGKILL (if still running) and reap; safe to call twice."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()
