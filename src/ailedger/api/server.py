"""Run a node: open its data directory, start the block producer, and serve the API with uvicorn.

Why the socket is bound here, before uvicorn starts: the port is known (port 0 picks a free one)
and connections queue in the kernel from that moment, so the "listening on" line we print after
uvicorn's startup is a promise a test or a supervisor can rely on.

Shutdown: SIGTERM and SIGINT make uvicorn finish the requests in flight; then the producer thread
is stopped and the store closed, so a clean stop leaves no write half done (and a SIGKILL, which no
one can catch, is what the store's atomic commits are for).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ailedger.chain.nodekey import load_node_key, write_node_key
from ailedger.chain.writerlock import WRITER_WAIT_S, lock_writer
from ailedger.core.keys import KeyPair

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from ailedger.chain.node import Node

    Extend = Callable[[FastAPI, Node], object]  # adds routes to the node's app before it serves

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "StopSignals", "bind", "load_node_key", "make_server",
           "run_server_in_thread", "serve", "write_node_key"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8645


def bind(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> socket.socket:
    """A listening TCP socket; port 0 lets the system choose a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it Nagle's algorithm holds each response body ~40 ms behind its headers on keep-alive.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextmanager
def run_server_in_thread(server: uvicorn.Server, start_timeout_s: float = 10.0, port: int = 0) -> Iterator[str]:
    """Run a (not yet started) uvicorn server on a loopback port (0: a free one) in a thread; yields its base URL.

    For tests and benchmarks that need a real server in-process: the server stops (and its thread is
    joined) when the block ends, and can be started again on the same port.
    """
    sock = bind("127.0.0.1", port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.005)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        if thread.is_alive():
            raise RuntimeError("uvicorn did not stop")


def make_config(node: Node, log_level: str = "warning", extend: Extend | None = None) -> uvicorn.Config:
    import uvicorn

    from ailedger.api.app import create_app

    app = create_app(node)
    if extend is not None:
        extend(app, node)  # e.g. the explorer's pages, which live in a layer this one must not import
    return uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off",
                          timeout_graceful_shutdown=5, timeout_keep_alive=5)


def make_server(node: Node, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for `node`'s app (not started); run it with `.run(sockets=[bind(...)])`."""
    import uvicorn

    return uvicorn.Server(make_config(node, log_level))


def serve(data_dir: Path | str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, block_interval_s: float = 0.5,
          node_key: KeyPair | None = None, log_level: str = "warning", extend: Extend | None = None,
          follow: str | None = None) -> None:
    """Serve the node in `data_dir` until SIGTERM or SIGINT; blocks the calling (main) thread.

    The proposer key is `node_key`, else the data directory's `node_key.json`; without either the
    node serves reads and accepts transactions but produces no blocks. With `follow` (a primary's
    URL) it is a read replica instead (docs/replicas.md): `data_dir` is made from the primary's
    genesis if new, and the primary is asked for new blocks every `block_interval_s`.
    """
    from ailedger.chain.node import Node
    from ailedger.chain.replica import open_replica
    from ailedger.modules import default_runtime

    with StopSignals() as stop:
        if follow is not None:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
        lock = lock_writer(Path(data_dir), wait_s=WRITER_WAIT_S)
        key = node_key if node_key is not None else load_node_key(data_dir)
        try:
            node = (open_replica(data_dir, follow, default_runtime(), poll_s=block_interval_s) if follow is not None
                    else Node(data_dir, default_runtime(), key, block_interval_s=block_interval_s))
        except BaseException:
            if lock is not None:
                os.close(lock)
            raise
        try:
            if follow is not None:
                print(f"replica of {follow}: verified up to height {node.store.height()}", file=sys.stderr,
                      flush=True)
            elif not node.can_produce:
                print("warning: no authorised proposer key in this data directory; blocks will not be produced",
                      file=sys.stderr, flush=True)
            if stop.requested:
                return
            sock = bind(host, port)
            server = _announcing_server(node, log_level, url_of(sock), stop, extend)
            node.start()
            server.run(sockets=[sock])
        finally:
            node.close()
            if lock is not None:
                os.close(lock)


def _announcing_server(node: Node, log_level: str, url: str, stop: StopSignals,
                       extend: Extend | None = None) -> uvicorn.Server:
    """The server, printing "listening on URL" once it accepts connections (or stopping at once if a
    signal came before uvicorn took over the handlers)."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if stop.requested:
                self.should_exit = True
            elif self.started:
                print(f"listening on {url}", flush=True)

    return AnnouncingServer(make_config(node, log_level, extend))


class StopSignals:
    """Make SIGTERM, like SIGINT, end `serve` with a normal return so the node and store are closed.

    Outside uvicorn's run these handlers only note the request. uvicorn installs its own while it
    runs, then restores ours and raises the signal again: with Python's default SIGTERM handler
    that second delivery would kill the process before the cleanup.
    """

    def __init__(self) -> None:
        self.requested = False
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._saved[sig] = signal.signal(sig, self._note)
        return self

    def _note(self, sig: int, frame: FrameType | None) -> None:
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


