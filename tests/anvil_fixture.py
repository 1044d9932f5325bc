"""A real anvil, the binary from the npm package `@foundry-rs/anvil` that `make venv` installs into build/evm.

Each fixture starts its own anvil on a free loopback port (silent), waits until it answers JSON-RPC,
and stops it afterwards. `Anvil.stop()` + `Anvil.start()` on the same port and `--state` file bring
the same EVM chain back, which is how the tests take the RPC away and return it.
"""

from __future__ import annotations

import platform
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
EVM_BUILD = ROOT / "build" / "evm"
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

# anvil's well-known development accounts (mnemonic "test test ... junk"): public, worthless off a dev chain.
DEV_KEYS = ["0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
            "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"]
DEV_ADDRESSES = ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]


def anvil_binary() -> Path:
    """The platform package's binary (what the npm `anvil` wrapper would spawn), so a signal reaches anvil itself."""
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    path = EVM_BUILD / "node_modules" / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make venv` (it installs evm/package.json into build/evm)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Anvil:
    def __init__(self, port: int, state: Path | None = None) -> None:
        self.port = port
        self.state = state
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        cmd = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port), "--silent"]
        if self.state is not None:
            cmd += ["--state", str(self.state)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"anvil exited with {self.proc.returncode}: {err}")
            try:
                r = httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                               timeout=1)
                if r.status_code == 200 and "result" in r.json():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"anvil did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        """SIGTERM, so that anvil writes its --state file before it exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[Anvil]:
    node = Anvil(free_port(), tmp_path / "anvil-state.json")
    node.start()
    try:
        yield node
    finally:
        node.stop()
