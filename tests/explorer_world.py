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
