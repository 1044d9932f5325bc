"""`node run --workers N`: N API processes over one PostgreSQL database, sharing one listening socket.

Why processes and not threads: a node's API spends its time in Python (decoding, signature checks,
JSON), which one interpreter runs on one core at a time. With a server store every process opens
the same chain; each keeps the state in memory and catches up with what the others wrote before it
answers (`Node.sync`, one small query when nothing changed). One of them at a time holds the
store's producer lock and seals blocks; if it dies, the lock goes with its database session and the
next process to try takes over, while uvicorn's supervisor starts a replacement process.

The socket is bound once here and inherited by every worker, so the kernel spreads connections over
them; connections queue from the moment of `bind`, which makes the "listening on" line true at once.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ailedger.core import errors
from ailedger.core.errors import LedgerError

if TYPE_CHECKING:
    from fastapi import FastAPI

WORKER_ENV = "AILEDGER_API_WORKER"  # the workers' settings, as JSON: how the parent reaches spawned children
PID_HEADER = "x-ailedger-worker"


def worker_app() -> FastAPI:
    """The app of one worker process (uvicorn calls this factory in each child)."""
    from ailedger.api.app import create_app
    from ailedger.chain.node import Node
    from ailedger.chain.nodekey import load_node_key
    from ailedger.modules import default_runtime

    spec = json.loads(os.environ[WORKER_ENV])
    data_dir = Path(spec["data_dir"])
    node = Node(data_dir, default_runtime(), load_node_key(data_dir), block_interval_s=spec["block_interval_s"])
    atexit.register(node.close)
    app = create_app(node)
    if spec.get("extend"):
        module, _, name = spec["extend"].partition(":")
        getattr(importlib.import_module(module), name)(app, node)  # e.g. the explorer (a higher layer)
    pid = str(os.getpid())

    @app.middleware("http")
    async def tag(request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers[PID_HEADER] = pid
        return response

    node.start()
    return app


def serve_workers(data_dir: Path, host: str, port: int, block_interval_s: float, workers: int,
                  log_level: str = "warning", extend: str | None = None) -> None:
    """Run `workers` API processes on one socket until SIGTERM or SIGINT (uvicorn's supervisor)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from ailedger.api.server import bind, url_of
    from ailedger.chain.store import Store

    store = Store.open(data_dir)
    try:
        if not store.shared:
            raise LedgerError(errors.BAD_ARGUMENT, f"--workers {workers} needs a chain in PostgreSQL (`chain init "
                              "--store postgresql://...` or `store migrate`); an SQLite chain has one writer process")
    finally:
        store.close()
    os.environ[WORKER_ENV] = json.dumps({"data_dir": str(data_dir), "block_interval_s": block_interval_s,
                                         "extend": extend})
    config = uvicorn.Config("ailedger.api.workers:worker_app", factory=True, workers=workers, log_level=log_level,
                            access_log=False, lifespan="off", timeout_graceful_shutdown=5, timeout_keep_alive=5)
    sock = bind(host, port)
    print(f"listening on {url_of(sock)} ({workers} worker processes)", flush=True)
    Multiprocess(config, sockets=[sock]).run()
